{
  "targets": [
    {
      "target_name": "tsrun_native",
      "sources": ["native/addon.cc", "native/bpf.cc", "native/netlink.cc", "native/common/scm.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "tsrun_probe",
      "sources": ["native/probe.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "tsrun-init",
      "type": "executable",
      "sources": [
        "native/helper/main.cc", "native/helper/plan.cc", "native/helper/report.cc", "native/helper/mounts.cc",
        "native/helper/console.cc", "native/helper/creds.cc", "native/helper/process.cc", "native/helper/paths.cc",
        "native/helper/io.cc", "native/helper/shim.cc", "native/helper/lsm.cc", "native/common/scm.cc"
      ],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-fno-exceptions", "-fno-rtti", "-fno-asynchronous-unwind-tables"],
      "ldflags": ["-static", "-s"]
    },
    {
      "target_name": "containerd-shim-tsrun-v2",
      "type": "executable",
      "sources": ["native/shim-launcher.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-fno-exceptions", "-fno-rtti", "-fno-asynchronous-unwind-tables"],
      "ldflags": ["-static", "-s"]
    },
    {
      "target_name": "install-shim-launcher",
      "type": "none",
      "dependencies": ["containerd-shim-tsrun-v2"],
      "copies": [{ "destination": "<(module_root_dir)/bin", "files": ["<(PRODUCT_DIR)/containerd-shim-tsrun-v2"] }]
    }
  ]
}
