"""Shared test setup: torch on one thread (as in the book), so tests are fast and
deterministic on a shared 2-core machine."""

import torch

torch.set_num_threads(1)
