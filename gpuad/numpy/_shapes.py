"""gpuad.numpy functions: shapes (filled in by the issue-3 work)."""
__all__: list[str] = []
