"""Can CUDA's stream memory operations wait on memory from a stream-ordered pool?

prunelab-cublas orders cuBLAS's stream against CubeCL's through two flags in CubeCL's memory,
which CubeCL allocates with cuMemAllocAsync. This probe (run on the GPU machine, driver API through
ctypes, torch only to create the context) shows why the hand-off uses kernels and not
cuStreamWaitValue32/cuStreamWriteValue32: those return CUDA_ERROR_INVALID_VALUE (1) on pool
memory and succeed (0) on cuMemAlloc/cudaMalloc memory. See bench/NOTES.md.
"""
import ctypes, torch
torch.zeros(1, device="cuda"); torch.cuda.synchronize()
cu = ctypes.CDLL("libcuda.so.1")
def chk(name, r): print(name, "->", r)
dev = ctypes.c_int(); cu.cuCtxGetDevice(ctypes.byref(dev))
for attr in (92, 93, 94):
    v = ctypes.c_int(); cu.cuDeviceGetAttribute(ctypes.byref(v), attr, dev); print("attr", attr, v.value)
stream = ctypes.c_void_p(); chk("cuStreamCreate", cu.cuStreamCreate(ctypes.byref(stream), 1))
t = torch.zeros(2, dtype=torch.int32, device="cuda"); torch.cuda.synchronize()
chk("wait on torch (cudaMalloc) memory v2", cu.cuStreamWaitValue32_v2(stream, ctypes.c_uint64(t.data_ptr()), 0, 0))
chk("wait on torch memory v1", cu.cuStreamWaitValue32(stream, ctypes.c_uint64(t.data_ptr()), 0, 0))
p = ctypes.c_uint64(); chk("cuMemAllocAsync", cu.cuMemAllocAsync(ctypes.byref(p), ctypes.c_size_t(64), stream)); cu.cuStreamSynchronize(stream)
chk("wait on mempool memory v2", cu.cuStreamWaitValue32_v2(stream, p, 0, 0))
q = ctypes.c_uint64(); chk("cuMemAlloc", cu.cuMemAlloc_v2(ctypes.byref(q), ctypes.c_size_t(64)))
chk("wait on cuMemAlloc memory v2", cu.cuStreamWaitValue32_v2(stream, q, 0, 0))
chk("write on mempool memory v2", cu.cuStreamWriteValue32_v2(stream, p, 1, 0))
chk("sync", cu.cuStreamSynchronize(stream))
