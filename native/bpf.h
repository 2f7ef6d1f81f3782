// The addon's bpf(2) calls (native/bpf.cc), registered on the module's exports by Init in addon.cc.
#pragma once
#include <napi.h>

void RegisterBpf(Napi::Env env, Napi::Object exports);
