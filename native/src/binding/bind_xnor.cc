// packRows, packCols, xnorGemm, bitplaneGemm, binaryConv2d.
#include <vector>

#include "args.h"
#include "../binary_conv/binary_conv.h"
#include "../xnor_gemm/reference.h"
#include "../xnor_gemm/xnor_gemm.h"

namespace bnn::binding {

namespace {

// packRows(src: Float32Array[rows*k], rows, k, dst: Int32Array[2*rows*ceil(k/64)])
Napi::Value pack_rows(const Napi::CallbackInfo& ci) {
  Args args(ci, "packRows", 4, 4);
  const size_t rows = args.dim(1, "rows"), k = args.dim(2, "k", 1);
  const float* src = args.floats(0, "src", mul(args, rows, k), "rows*k");
  uint64_t* dst = args.words(3, "dst", mul(args, rows, ref::packed_words(k)), "rows*ceil(k/64)");
  args.require_disjoint(0, "src", 3, "dst");
  xnor::pack_rows(src, rows, k, dst);
  return args.env().Undefined();
}

// packCols(src: Float32Array[k*n], k, n, dst: Int32Array[2*n*ceil(k/64)])
Napi::Value pack_cols(const Napi::CallbackInfo& ci) {
  Args args(ci, "packCols", 4, 4);
  const size_t k = args.dim(1, "k", 1), n = args.dim(2, "n");
  const float* src = args.floats(0, "src", mul(args, k, n), "k*n");
  uint64_t* dst = args.words(3, "dst", mul(args, n, ref::packed_words(k)), "n*ceil(k/64)");
  args.require_disjoint(0, "src", 3, "dst");
  xnor::pack_cols(src, k, n, dst);
  return args.env().Undefined();
}

// xnorGemm(a: Int32Array[2*m*kw], b: Int32Array[2*n*kw], m, n, k, c: Float32Array[m*n])
Napi::Value xnor_gemm(const Napi::CallbackInfo& ci) {
  Args args(ci, "xnorGemm", 6, 6);
  const size_t m = args.dim(2, "m"), n = args.dim(3, "n"), k = args.dim(4, "k", 1);
  require_exact_k(args, k);
  const size_t kw = ref::packed_words(k);
  const uint64_t* a = args.words(0, "a", mul(args, m, kw), "m*ceil(k/64)");
  const uint64_t* b = args.words(1, "b", mul(args, n, kw), "n*ceil(k/64)");
  float* c = args.floats(5, "c", mul(args, m, n), "m*n");
  args.require_disjoint(5, "c", 0, "a");
  args.require_disjoint(5, "c", 1, "b");
  xnor::gemm(a, b, c, m, n, k);
  return args.env().Undefined();
}

// bitplaneGemm(raw: Uint8Array[m*k], m, k, w: Int32Array[2*n*kw], n, out: Float32Array[m*n])
Napi::Value bitplane_gemm(const Napi::CallbackInfo& ci) {
  Args args(ci, "bitplaneGemm", 6, 6);
  const size_t m = args.dim(1, "m"), k = args.dim(2, "k", 1), n = args.dim(4, "n");
  if (k > ref::kBitplaneMaxK)
    args.fail("argument 'k' must be at most 65793 (255*k < 2^24: exact float results), got " + std::to_string(k));
  const uint8_t* raw = args.bytes(0, "raw", mul(args, m, k), "m*k");
  const uint64_t* w = args.words(3, "w", mul(args, n, ref::packed_words(k)), "n*ceil(k/64)");
  float* out = args.floats(5, "out", mul(args, m, n), "m*n");
  args.require_disjoint(5, "out", 0, "raw");
  args.require_disjoint(5, "out", 3, "w");
  xnor::bitplane_gemm(raw, w, out, m, n, k);
  return args.env().Undefined();
}

// binaryConv2d(x: Float32Array NHWC, filter, geometry, out: Float32Array NHWC), where filter is
// either the HWIO floats (Float32Array, signs packed here on every call) or those signs
// pre-packed with packCols(filter, kH*kW*inC, outC) (Int32Array).
Napi::Value binary_conv2d(const Napi::CallbackInfo& ci) {
  Args args(ci, "binaryConv2d", 4, 4);
  const conv::Geometry g = args.geometry(2, "geometry");
  require_exact_patch(args, g);
  const float* x = args.floats(0, "x", g.input_size(), "batch*inH*inW*inC");
  float* out = args.floats(3, "out", g.output_size(), "batch*outH*outW*outC");
  args.require_disjoint(3, "out", 0, "x");
  const size_t words = g.out_c * ref::packed_words(g.patch());
  std::vector<uint64_t> packed;
  const uint64_t* w;
  const Napi::Value f = ci[1];
  if (f.IsTypedArray() && f.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    const float* wf = args.floats(1, "filter", g.filter_size(), "kH*kW*inC*outC");
    packed.resize(words);
    xnor::pack_cols(wf, g.patch(), g.out_c, packed.data());
    w = packed.data();
  } else {
    if (!f.IsTypedArray() || f.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      args.fail("argument 'filter' must be a Float32Array of length kH*kW*inC*outC = " +
                std::to_string(g.filter_size()) + " or an Int32Array of packed filter bits");
    w = args.words(1, "filter", words, "outC*ceil(kH*kW*inC/64)");
  }
  args.require_disjoint(3, "out", 1, "filter");
  binary_conv::conv2d(x, w, g, out);
  return args.env().Undefined();
}

}  // namespace

void register_xnor(Napi::Env env, Napi::Object exports) {
  export_function<pack_rows>(env, exports, "packRows");
  export_function<pack_cols>(env, exports, "packCols");
  export_function<xnor_gemm>(env, exports, "xnorGemm");
  export_function<bitplane_gemm>(env, exports, "bitplaneGemm");
  export_function<binary_conv2d>(env, exports, "binaryConv2d");
}

}  // namespace bnn::binding
