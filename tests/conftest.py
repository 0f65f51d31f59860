"""Suite-wide settings: the tests use small tensors, where one torch thread is fastest and
where several threads on a shared 2-core machine mostly fight each other."""
import torch

torch.set_num_threads(1)
