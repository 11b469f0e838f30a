"""Clean IT: reduce terrorist use of the Internet while keeping to the rule of law."""

__version__ = "0.1.0"
