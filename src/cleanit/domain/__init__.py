"""The domain: rules, states and invariants in pure Python (standard library only)."""
