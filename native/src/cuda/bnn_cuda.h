/* C API of the CUDA binary kernels (sign-pack, XNOR-popcount GEMM, binary conv2d).
 *
 * Plain C so the Node addon (or any C/C++ caller) can include it without CUDA headers.
 * Bit contract: native/src/xnor_gemm/reference.h (bit 1 = x < 0, sign(0) = +1; rows of K
 * values in ceil(K/64) little-endian uint64 words, tail bits 0; dot = K - 2*popc(a^b)).
 *
 * Every function returns a bnn_cuda_status. Arguments are checked at entry (sizes, null
 * pointers, alignment, device-memory pointers) and a failure returns an error code with a
 * message in bnn_cuda_last_error(); nothing aborts. All pointers given to kernels are device
 * (or managed) memory. `stream` is a cudaStream_t (NULL = the legacy default stream); work is
 * enqueued asynchronously unless a function says otherwise.
 */
#ifndef BNN_CUDA_H_
#define BNN_CUDA_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bnn_cuda_status {
  BNN_CUDA_OK = 0,
  BNN_CUDA_ERR_INVALID_ARG = 1, /* a contract check failed */
  BNN_CUDA_ERR_NO_DEVICE = 2,   /* no usable CUDA device / driver */
  BNN_CUDA_ERR_UNSUPPORTED = 3, /* the requested variant cannot run on this device */
  BNN_CUDA_ERR_ALLOC = 4,       /* device allocation failed */
  BNN_CUDA_ERR_CUDA = 5         /* any other CUDA runtime error (see bnn_cuda_last_error) */
} bnn_cuda_status;

typedef enum bnn_cuda_gemm_variant {
  BNN_CUDA_GEMM_AUTO = 0, /* mma where available, correct and not slower, else popc (bnn_cuda_gemm_resolve) */
  BNN_CUDA_GEMM_MMA = 1,  /* 1-bit tensor cores: mma.sync m16n8k256 b1 AND-popc (sm_80+) */
  BNN_CUDA_GEMM_POPC = 2  /* shared-memory tiled XOR + __popcll on CUDA cores */
} bnn_cuda_gemm_variant;

typedef struct bnn_cuda_device_info {
  int available;     /* 1 when this device can run the kernels */
  int device;        /* ordinal */
  int cc_major;      /* compute capability */
  int cc_minor;
  int sm_count;
  int mma_b1;        /* 1 when the b1 tensor-core kernel is built for and runs on this device */
  uint64_t total_mem_bytes;
  char name[256];
  char reason[256];  /* why available == 0 */
} bnn_cuda_device_info;

typedef struct bnn_cuda_conv2d_params {
  int64_t batch, in_h, in_w, in_c; /* input x: NHWC [batch][in_h][in_w][in_c] */
  int64_t k_h, k_w, out_c;         /* filter w: HWIO [k_h][k_w][in_c][out_c] */
  int64_t stride_h, stride_w;      /* >= 1 */
  int64_t pad_top, pad_left;       /* >= 0; taps outside the input are zero padding */
  int64_t out_h, out_w;            /* output y: NHWC [batch][out_h][out_w][out_c] */
} bnn_cuda_conv2d_params;

const char* bnn_cuda_status_string(int status);
/* Detail of the last failure on the calling thread ("" when none). */
const char* bnn_cuda_last_error(void);

/* Number of devices; 0 (and BNN_CUDA_OK) when there is no driver or no device. */
int bnn_cuda_device_count(int* count);
/* Fills *info; returns BNN_CUDA_OK with info->available = 0 and a reason when the device is absent. */
int bnn_cuda_device_query(int device, bnn_cuda_device_info* info);
int bnn_cuda_set_device(int device);

/* Simple device buffer helpers (caller may equally pass its own cudaMalloc'd memory). */
int bnn_cuda_malloc(void** ptr, size_t bytes);
int bnn_cuda_free(void* ptr);
/* cudaMemcpyDefault copy (host<->device<->device), synchronous. */
int bnn_cuda_memcpy(void* dst, const void* src, size_t bytes);
int bnn_cuda_synchronize(void);

/* Words per packed row: ceil(k / word_bits) for word_bits 32 or 64. */
size_t bnn_cuda_packed_words(size_t k, int word_bits);

/* Sign-packs `rows` rows of `k` floats (row stride `ld` >= k floats) into rows of
 * bnn_cuda_packed_words(k, word_bits) words (uint64 for 64, uint32 for 32). */
int bnn_cuda_pack_rows(const float* src, int64_t rows, int64_t k, int64_t ld, void* dst, int word_bits,
                       void* stream);
/* Packed transpose: column c of the row-major [k][n] matrix (row stride ld >= n) becomes packed
 * row c of dst ([n][packed_words(k)]). */
int bnn_cuda_pack_cols(const float* src, int64_t k, int64_t n, int64_t ld, void* dst, int word_bits,
                       void* stream);
/* out[r] = number of 1 bits (negative signs) in packed row r of [rows][ceil(k/64)] uint64. */
int bnn_cuda_row_popcounts(const uint64_t* packed, int64_t rows, int64_t k, int32_t* out, void* stream);

/* C[m][n] = k - 2*popc(A[m] ^ B[n]) as float, A [m][ceil(k/64)], B [n][ceil(k/64)] uint64 (B holds
 * the columns of the right-hand matrix), C row-major [m][n]. a_popc/b_popc: optional row popcounts
 * (bnn_cuda_row_popcounts) used by the mma variant; NULL = computed here in stream-ordered scratch.
 * k <= 2^28; m, n < 2^31. */
int bnn_cuda_xnor_gemm(const uint64_t* a, const uint64_t* b, float* c, int64_t m, int64_t n, int64_t k,
                       int variant, const int32_t* a_popc, const int32_t* b_popc, void* stream);
/* The variant `variant` resolves to on the current device. AUTO, once per device and process
 * (synchronous, a few ms): mma when the device has the b1 kernel, it matches the scalar reference on
 * a self-test, and popc is not >10% faster on a 2048x2048x4096 probe; else popc. The environment
 * variable BNN_CUDA_GEMM=mma|popc overrides AUTO. */
int bnn_cuda_gemm_resolve(int variant, int* resolved);

/* Binary conv2d: y = conv(sign(x), sign(w)) with zero padding (a padded tap contributes 0, not +1).
 * x, w, y device floats in the layouts of bnn_cuda_conv2d_params. workspace: device scratch of at
 * least bnn_cuda_conv2d_workspace_bytes() bytes, or NULL to allocate it stream-ordered here. */
int bnn_cuda_conv2d_workspace_bytes(const bnn_cuda_conv2d_params* p, size_t* bytes);
int bnn_cuda_binary_conv2d(const float* x, const float* w, float* y, const bnn_cuda_conv2d_params* p,
                           int variant, void* workspace, size_t workspace_bytes, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* BNN_CUDA_H_ */
