"""What the tests share, and what bench/ borrows from them: each module named for what it
holds. Tests and benchmarks import these, never a test module or a conftest."""
