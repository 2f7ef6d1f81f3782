// The addon's rtnetlink calls (native/netlink.cc), registered on the module's exports by Init in addon.cc.
#pragma once
#include <napi.h>

void RegisterNetlink(Napi::Env env, Napi::Object exports);
