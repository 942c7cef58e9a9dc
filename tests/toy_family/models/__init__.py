"""The toy family's networks (`networks`) and hooks (`hooks`)."""
