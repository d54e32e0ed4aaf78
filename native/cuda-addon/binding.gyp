{
  # bnn_cuda: the optional CUDA addon (native/cuda-addon/build/Release/bnn_cuda.node), built by
  # build.mjs only where nvcc is found. The kernels come precompiled from native/tools/cuda (libbnn_cuda.a,
  # sm_80 + sm_90 machine code and sm_90 PTX, -fPIC); this target only compiles its part of the
  # binding layer both addons share (native/src/binding: cuda_addon.cc, bind_cuda.cc, cuda_device.cc
  # and the shared args.cc) and links the CUDA runtime statically, so loading the addon never needs
  # libcudart.so (only the driver, libcuda.so.1, which is dlopened at first use).
  'variables': {
    'cuda_libdir%': '<!(sh ./cuda-libdir.sh)',
    'bnn_cuda_lib%': '<!(node -p "require(\'path\').resolve(\'../tools/cuda/build/addon/libbnn_cuda.a\')")',
  },
  'targets': [
    {
      'target_name': 'bnn_cuda',
      'sources': [
        '../src/binding/cuda_addon.cc',
        '../src/binding/args.cc',
        '../src/binding/bind_cuda.cc',
        '../src/binding/cuda_device.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags': ['-O2', '-fPIC', '-Wall', '-Wextra', '-Wno-unused-parameter', '-pthread'],
      'cflags_cc': ['-std=c++17'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++14', '-std=gnu++17'],
      # Keep the static runtime's symbols private to this module (tfjs-node-gpu may load its own).
      'ldflags': ['-L<(cuda_libdir)', '-Wl,--exclude-libs,ALL'],
      'libraries': ['<(bnn_cuda_lib)', '-lcudart_static', '-ldl', '-lrt', '-lpthread'],
    },
  ],
}
