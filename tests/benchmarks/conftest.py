"""Fixtures shared by the benchmark tests."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on a loaded 2-core machine two threads stall each other for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
