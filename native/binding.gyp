{
  "variables": {
    # 1 when scripts/build-native.mjs found oneDNN 2.x headers (libdnnl-dev): convolutions then
    # run through oneDNN, otherwise through im2col + OpenBLAS.
    "fj_dnnl%": "<!(node -p \"process.env.FEDJOINT_BUILD_DNNL === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "fedjoint_native",
      "sources": [
        "src/addon.cc",
        "src/parallel.cc",
        "src/conv.cc",
        "src/conv_dnnl.cc",
        "src/norm.cc",
        "src/elementwise.cc"
      ],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["fj_dnnl==1", {
          "defines": ["FJ_DNNL"],
          "cflags_cc": ["-fopenmp"],
          "libraries": ["-ldnnl", "-lgomp"]
        }]
      ]
    }
  ]
}
