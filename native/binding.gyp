{
  "targets": [
    {
      "target_name": "fedjoint_conv",
      "sources": ["conv.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
