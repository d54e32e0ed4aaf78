{
  # bnn_native: the N-API addon (native/build/Release/bnn_native.node).
  # ISA kernel files are static libraries with their own -m flags (gyp has no per-file
  # flags); everything else is built for the x86-64 baseline, so the addon loads and runs
  # on CPUs without AVX2/AVX-512 and select.cc picks the best variant at run time.
  # native/tools/cpu/Makefile mirrors these flags for the standalone checker.
  # The binding layer (src/binding) is shared with the CUDA addon, whose own files there
  # (cuda_addon.cc, bind_cuda.cc, cuda_device.cc) cuda-addon/binding.gyp compiles.
  'variables': {
    'openblas_cflags': '<!(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu)',
    'openblas_libs': '<!(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)',
  },
  'target_defaults': {
    # -fno-math-errno lets sqrt vectorise (nothing here reads errno).
    'cflags': ['-O3', '-fno-math-errno', '-fPIC', '-Wall', '-Wextra', '-Wno-unused-parameter', '-pthread'],
    'cflags_cc': ['-std=c++17'],
    'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++14', '-std=gnu++17'],
  },
  'targets': [
    {
      'target_name': 'bnn_native',
      'sources': [
        'src/binding/addon.cc',
        'src/binding/args.cc',
        'src/binding/bind_codec.cc',
        'src/binding/bind_elementwise.cc',
        'src/binding/bind_fp32.cc',
        'src/binding/bind_xnor.cc',
        'src/binary_conv/binary_conv.cc',
        'src/codec/codec.cc',
        'src/common/cpu_features.cc',
        'src/common/thread_pool.cc',
        'src/elementwise/elementwise.cc',
        'src/fp32/fp32.cc',
        'src/xnor_gemm/select.cc',
        'src/xnor_gemm/xnor_gemm.cc',
        'src/xnor_gemm/xnor_gemm_portable.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags': ['<@(openblas_cflags)'],
      'libraries': ['<@(openblas_libs)', '-pthread'],
      'conditions': [
        ['target_arch=="x64"', {'dependencies': ['xnor_gemm_avx2', 'xnor_gemm_avx512', 'codec_avx2', 'codec_avx512']}],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'xnor_gemm_avx2',
          'type': 'static_library',
          'sources': ['src/xnor_gemm/xnor_gemm_avx2.cc'],
          'cflags': ['-mavx2', '-mpopcnt'],
        },
        {
          'target_name': 'xnor_gemm_avx512',
          'type': 'static_library',
          'sources': ['src/xnor_gemm/xnor_gemm_avx512.cc'],
          # GCC 12 warns about its own AVX-512 intrinsic headers (the undefined-vector idiom).
          'cflags': ['-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl', '-mavx512vpopcntdq',
                     '-Wno-uninitialized', '-Wno-maybe-uninitialized'],
        },
        # all-reduce codec kernels (native/src/codec); no FMA contraction, so results stay
        # bit-identical to the portable and JavaScript paths
        {
          'target_name': 'codec_avx2',
          'type': 'static_library',
          'sources': ['src/codec/codec_avx2.cc'],
          'cflags': ['-mavx2', '-mf16c', '-ffp-contract=off'],
        },
        {
          'target_name': 'codec_avx512',
          'type': 'static_library',
          'sources': ['src/codec/codec_avx512.cc'],
          'cflags': ['-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl', '-mf16c', '-ffp-contract=off',
                     '-Wno-uninitialized', '-Wno-maybe-uninitialized'],
        },
      ],
    }],
  ],
}
