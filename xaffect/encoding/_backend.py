"""Where and in what precision the ridge kernels run: numpy or torch, cpu or cuda, float32 or float64.

The kernels in :mod:`._solvers` are written once against the array API
(``array_api_compat``), so the same code runs on numpy arrays and on torch
tensors; this module only validates the choice and moves arrays. Nothing
falls back silently: torch that is missing, a CUDA device that is not there,
or a precision below float32 is an error naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Backend", "resolve_backend"]

_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Backend:
    """A resolved compute backend.

    Attributes
    ----------
    name : {"numpy", "torch"}
    device : str
        ``"cpu"`` for numpy; ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` for torch.
    dtype : {"float32", "float64"}
        Precision of the large products (see :mod:`._solvers`).
    """

    name: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"

    def asarray(self, a):
        """``a`` (numpy) as an array of this backend, device and dtype.

        Parameters
        ----------
        a : array of any shape

        Returns
        -------
        numpy array or torch tensor of the same shape
        """
        if self.name == "numpy":
            return np.asarray(a, dtype=self.dtype)
        import torch

        return torch.as_tensor(np.asarray(a), dtype=getattr(torch, self.dtype), device=self.device)

    def describe(self) -> dict[str, str]:
        """What to record in a store's provenance."""
        out = {"backend": self.name, "device": self.device, "dtype": self.dtype}
        if self.name == "torch":
            import torch

            out["torch"] = torch.__version__
            if self.device.startswith("cuda"):
                out["cuda_device"] = torch.cuda.get_device_name(torch.device(self.device))
        return out


def resolve_backend(backend: str | Backend = "numpy", *, device: str = "cpu", dtype: str = "float64") -> Backend:
    """Validate a backend choice.

    Parameters
    ----------
    backend : {"numpy", "torch"} or Backend
    device : str
        ``"cpu"``, or ``"cuda"`` / ``"cuda:N"`` with ``backend="torch"``.
    dtype : {"float32", "float64"}

    Returns
    -------
    Backend

    Raises
    ------
    ValueError
        An unknown backend or dtype, float16, or cuda with numpy.
    RuntimeError
        ``backend="torch"`` without torch, or a CUDA device torch cannot see.
    """
    if isinstance(backend, Backend):
        return backend
    dtype = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: ridge kernels run in 'float32' or 'float64', got {dtype!r} "
                         "(float16 loses the precision alpha selection needs)")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend: must be 'numpy' or 'torch', got {backend!r}")
    if backend == "numpy":
        if device != "cpu":
            raise ValueError(f"device: backend='numpy' runs on 'cpu' only, got {device!r}; use backend='torch'")
        return Backend("numpy", "cpu", dtype)
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a dependency
        raise RuntimeError("backend='torch' needs PyTorch installed") from err
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r}: this torch ({torch.__version__}) sees no CUDA device; "
                               "use device='cpu' or a CUDA build of torch")
    elif device != "cpu":
        raise ValueError(f"device: must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return Backend("torch", device, dtype)
