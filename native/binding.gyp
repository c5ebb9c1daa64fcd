{
  "targets": [
    {
      "target_name": "fedjoint_native",
      "sources": ["src/addon.cc", "src/parallel.cc", "src/conv.cc", "src/norm.cc", "src/elementwise.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
