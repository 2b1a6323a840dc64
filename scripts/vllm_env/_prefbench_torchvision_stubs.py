"""Loaded at start-up of the vLLM venv's Python (through a .pth file) by
scripts/setup_vllm_env.sh: makes the CUDA build of torchvision importable beside CPU torch by
loading, with global symbol visibility, torchvision's bundled libcudart and stand-ins named
libc10_cuda.so / libtorch_cuda.so. The dynamic loader then satisfies torchvision's _C.so
dependencies by soname. Does nothing if the files are absent."""

import ctypes
import glob
import os
import sysconfig

_site = sysconfig.get_paths()["purelib"]
_stubs = os.path.join(_site, "prefbench_cuda_stubs")
if os.path.isdir(_stubs):
    for _lib in sorted(glob.glob(os.path.join(_site, "torchvision.libs", "libcudart*.so*"))) + [
        os.path.join(_stubs, "libc10_cuda.so"), os.path.join(_stubs, "libtorch_cuda.so")
    ]:
        try:
            ctypes.CDLL(_lib, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass
