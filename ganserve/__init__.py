"""ganserve: the launcher and the small torch-free pieces every process shares (settings)."""
