"""Hash-matching adapters: exact, fast nearest-neighbour lookups for perceptual hashes."""
