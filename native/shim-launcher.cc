// containerd-shim-tsrun-v2 (bin/, built by binding.gyp): the shim's entry, a small static launcher in front
// of src/shim/containerd/main.ts. containerd runs this binary twice per container (`start`, and `delete`
// once the shim's connection closes): starting Node for each cost ~90 ms of CPU. The launcher answers the
// usual cases itself, with the same results as main.ts (test/shim-launcher.test.ts compares them on a table
// of bundles), and execs node with dist/src/shim/containerd/main.js for everything else:
//  - start: the group and socket as main.ts's groupOf/socketPath compute them (SHA-256 below, config.json's
//    annotations through a strict JSON reader); a live shim on the socket: its address; none: the server
//    (`node main.js ... serve`) spawned as main.ts's start spawns it;
//  - delete: when no container is left under the tsrun root, the rootfs is not a mount point and the
//    group's socket is alive or gone (or dead: removed), the DeleteResponse main.ts's deleteResponse writes;
//  - -v / --version.
// Whenever an input is not one it can judge exactly as main.ts does (a malformed, odd or oversized file, a
// path that path.join would rewrite, a non-string annotation, an unexpected errno), it execs node, which
// decides. Inputs from the bundle are read bounded, regular files only, without following symlinks.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

const char* const SOCKET_DIR = "/run/containerd/s";
const char* const DEFAULT_ROOT = "/run/containerd/tsrun";
const char* const MAIN_JS = "/dist/src/shim/containerd/main.js";
const char* const BLOB = "/dist/containerd-shim-tsrun-v2.blob";  // scripts/snapshot-shim.js
const size_t MAX_JSON = 16 << 20;  // larger bundle files: node reads them

char** g_argv;
int g_argc;
bool g_oom;  // an allocation failed: node decides

// ---- node, for everything the launcher does not answer ----

[[noreturn]] void die(const char* what) {
  dprintf(2, "containerd-shim-tsrun-v2: %s: %s\n", what, strerror(errno));
  _exit(1);
}

// The package directory: /proc/self/exe is PKG/bin/containerd-shim-tsrun-v2.
bool package_dir(char* out, size_t size) {
  ssize_t n = readlink("/proc/self/exe", out, size - 1);
  if (n <= 0 || (size_t)n >= size - 1) return false;
  out[n] = 0;
  for (int i = 0; i < 2; i++) {
    char* s = strrchr(out, '/');
    if (!s) return false;
    *s = 0;
  }
  return true;
}

// node: the first executable regular file named node on PATH, as bin/tsrun finds it.
bool find_node(char* out, size_t size) {
  const char* path = getenv("PATH");
  if (!path) return false;
  const char* p = path;
  for (;;) {
    const char* end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    int n = len ? snprintf(out, size, "%.*s/node", (int)len, p) : snprintf(out, size, "./node");
    struct stat st;
    if (n > 0 && (size_t)n < size && stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) return true;
    if (!end) return false;
    p = end + 1;
  }
}

struct Node {
  char node[PATH_MAX];
  char main_js[PATH_MAX];
};

bool locate(Node& n) {
  char dir[PATH_MAX];
  if (!package_dir(dir, sizeof dir)) return false;
  int len = snprintf(n.main_js, sizeof n.main_js, "%s%s", dir, MAIN_JS);
  if (len <= 0 || (size_t)len >= sizeof n.main_js) return false;
  if (!find_node(n.node, sizeof n.node)) {
    dprintf(2, "containerd-shim-tsrun-v2: node not found on PATH\n");
    _exit(1);
  }
  return true;
}

// exec node main.js with this command's own arguments: main.ts decides.
[[noreturn]] void exec_node() {
  Node n;
  if (!locate(n)) die("the package directory (/proc/self/exe)");
  char** args = (char**)calloc((size_t)g_argc + 2, sizeof(char*));
  if (!args) die("calloc");
  args[0] = n.node;
  args[1] = n.main_js;
  for (int i = 1; i < g_argc; i++) args[i + 1] = g_argv[i];
  execv(n.node, args);
  die(n.node);
}

// ---- bytes ----

struct Buf {
  char* p = nullptr;
  size_t len = 0, cap = 0;
  bool add(const void* d, size_t n) {
    if (len + n + 1 > cap) {
      size_t c = cap ? cap : 256;
      while (c < len + n + 1) c *= 2;
      char* q = (char*)realloc(p, c);
      if (!q) {
        g_oom = true;
        return false;
      }
      p = q;
      cap = c;
    }
    memcpy(p + len, d, n);
    len += n;
    p[len] = 0;
    return true;
  }
  bool add(const char* s) { return add(s, strlen(s)); }
  bool addc(char c) { return add(&c, 1); }
  void clear() { len = 0; if (p) p[0] = 0; }
};

bool write_all(int fd, const void* d, size_t n) {
  const char* c = (const char*)d;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= (size_t)w;
  }
  return true;
}

// ---- SHA-256 (FIPS 180-4) ----

struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block[64];
  size_t used = 0;
  uint64_t total = 0;

  static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress(const uint8_t* b) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
        0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
        0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
        0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
        0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
        0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = bb;
      bb = a;
      a = t1 + t2;
    }
    h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }

  void update(const void* data, size_t n) {
    const uint8_t* p = (const uint8_t*)data;
    total += n;
    while (n) {
      size_t take = 64 - used < n ? 64 - used : n;
      memcpy(block + used, p, take);
      used += take;
      p += take;
      n -= take;
      if (used == 64) {
        compress(block);
        used = 0;
      }
    }
  }

  void hex(char out[65]) {
    uint64_t bits = total * 8;
    uint8_t pad = 0x80;
    update(&pad, 1);
    uint8_t zero = 0;
    while (used != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    update(len, 8);
    for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", h[i]);
  }
};

// ---- the bundle's JSON files ----

// A file of the bundle: a regular file, not through a symlink, at most MAX_JSON bytes. 1: read; 0: absent
// (ENOENT: main.ts's readFileSync fails the same way); -1: anything else (node decides).
int read_file(const char* name, Buf& out) {
  int fd = open(name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  struct stat st;
  int r = -1;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= MAX_JSON) {
    char chunk[16384];
    r = 1;
    for (;;) {
      ssize_t n = read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || out.len + (size_t)n > MAX_JSON || !out.add(chunk, (size_t)n)) {
        r = -1;
        break;
      }
      if (n == 0) break;
    }
  }
  close(fd);
  return r;
}

// Strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF): node's utf8 decoding of
// anything else replaces bytes, which the launcher leaves to node.
bool valid_utf8(const char* s, size_t n) {
  const uint8_t* p = (const uint8_t*)s;
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    int len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
    else return false;
    if (i + (size_t)len > n) return false;
    for (int k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += (size_t)len;
  }
  return true;
}

enum Kind { NONE, STRING, NUMBER, TRUE_, FALSE_, NULL_, OBJECT, ARRAY };

struct Value {
  Kind kind = NONE;
  Buf str;  // a STRING's text in UTF-8
};

// A strict JSON reader (RFC 8259, as JSON.parse takes it) that keeps only what the launcher asks about: the
// top-level value's kind and, of a top-level object, the last member named `member` (its kind; its text when
// a string); of that member's value, when an object, the last members named keys[0..nkeys). Every other
// value is checked and skipped.
struct Json {
  const char* s;
  size_t n, i = 0;
  bool lone_surrogate = false;
  bool gave_up = false;  // too deep: not a verdict on the text
  const char* member;
  const char* const* keys;
  int nkeys;
  Json(const Buf& text, const char* member_, const char* const* keys_, int nkeys_) : s(text.p), n(text.len), member(member_), keys(keys_), nkeys(nkeys_) {}
  Kind top = NONE;
  Value found;          // the member
  Value inner[2];       // its keys
  static const int MAX_DEPTH = 512;  // deeper: node decides

  void ws() {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  }

  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool hex4(uint32_t& v) {
    if (i + 4 > n) return false;
    v = 0;
    for (int k = 0; k < 4; k++) {
      int h = hexval(s[i + k]);
      if (h < 0) return false;
      v = v << 4 | (uint32_t)h;
    }
    i += 4;
    return true;
  }

  static bool utf8(Buf& out, uint32_t cp) {
    char b[4];
    size_t len;
    if (cp < 0x80) b[0] = (char)cp, len = 1;
    else if (cp < 0x800) b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), len = 2;
    else if (cp < 0x10000) b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[2] = (char)(0x80 | (cp & 0x3f)), len = 3;
    else b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)), b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), len = 4;
    return out.add(b, len);
  }

  // a string at s[i] == '"', decoded into out
  bool string(Buf& out) {
    out.clear();
    if (!out.add("", 0)) return false;
    i++;
    for (;;) {
      if (i >= n) return false;
      unsigned char c = (unsigned char)s[i];
      if (c == '"') {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        size_t j = i;
        while (j < n && s[j] != '"' && s[j] != '\\' && (unsigned char)s[j] >= 0x20) j++;
        if (!out.add(s + i, j - i)) return false;
        i = j;
        continue;
      }
      if (++i >= n) return false;
      char e = s[i++];
      switch (e) {
        case '"': if (!out.addc('"')) return false; break;
        case '\\': if (!out.addc('\\')) return false; break;
        case '/': if (!out.addc('/')) return false; break;
        case 'b': if (!out.addc('\b')) return false; break;
        case 'f': if (!out.addc('\f')) return false; break;
        case 'n': if (!out.addc('\n')) return false; break;
        case 'r': if (!out.addc('\r')) return false; break;
        case 't': if (!out.addc('\t')) return false; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
            size_t save = i;
            i += 2;
            uint32_t lo;
            if (!hex4(lo)) return false;
            if (lo >= 0xdc00 && lo <= 0xdfff) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else i = save;  // the next escape stands alone
          }
          if (cp >= 0xd800 && cp <= 0xdfff) {
            lone_surrogate = true;
            cp = 0xfffd;
          }
          if (!utf8(out, cp)) return false;
          break;
        }
        default: return false;
      }
    }
  }

  bool number() {
    size_t start = i;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return false;
    if (i < n && s[i] == '.') {
      i++;
      if (!(i < n && s[i] >= '0' && s[i] <= '9')) return false;
      while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
      i++;
      if (i < n && (s[i] == '+' || s[i] == '-')) i++;
      if (!(i < n && s[i] >= '0' && s[i] <= '9')) return false;
      while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    return i > start;
  }

  bool literal(const char* w) {
    size_t len = strlen(w);
    if (i + len > n || memcmp(s + i, w, len) != 0) return false;
    i += len;
    return true;
  }

  // A value at s[i]. level 0: the document; 1: a member of the top-level object named `member` (into
  // `found`); 2: a member of that object named keys[slot] (into inner[slot]). -1: not kept.
  bool value(int depth, int level, int slot, Kind& kind) {
    if (depth > MAX_DEPTH) {
      gave_up = true;
      return false;
    }
    ws();
    if (i >= n) return false;
    Value* keep = level == 1 ? &found : level == 2 ? &inner[slot] : nullptr;
    Buf scratch;
    char c = s[i];
    bool ok;
    if (c == '{') {
      kind = OBJECT;
      i++;
      ws();
      if (i < n && s[i] == '}') {
        i++;
        ok = true;
      } else {
        ok = false;
        Buf key;
        for (;;) {
          ws();
          if (i >= n || s[i] != '"' || !string(key)) break;
          ws();
          if (i >= n || s[i] != ':') break;
          i++;
          int next = -1, nslot = 0;
          if (level == 0 && key.len == strlen(member) && memcmp(key.p, member, key.len) == 0) {
            next = 1;
            found.kind = NONE;
            inner[0].kind = inner[1].kind = NONE;
          } else if (level == 1) {
            for (int k = 0; k < nkeys; k++)
              if (key.len == strlen(keys[k]) && memcmp(key.p, keys[k], key.len) == 0) next = 2, nslot = k;
          }
          Kind sub;
          if (!value(depth + 1, next, nslot, sub)) break;
          ws();
          if (i < n && s[i] == ',') {
            i++;
            continue;
          }
          if (i < n && s[i] == '}') {
            i++;
            ok = true;
          }
          break;
        }
        free(key.p);
      }
    } else if (c == '[') {
      kind = ARRAY;
      i++;
      ws();
      if (i < n && s[i] == ']') {
        i++;
        ok = true;
      } else {
        ok = false;
        for (;;) {
          Kind sub;
          if (!value(depth + 1, -1, 0, sub)) break;
          ws();
          if (i < n && s[i] == ',') {
            i++;
            continue;
          }
          if (i < n && s[i] == ']') {
            i++;
            ok = true;
          }
          break;
        }
      }
    } else if (c == '"') {
      kind = STRING;
      ok = string(keep ? keep->str : scratch);
    } else if (c == 't') {
      kind = TRUE_;
      ok = literal("true");
    } else if (c == 'f') {
      kind = FALSE_;
      ok = literal("false");
    } else if (c == 'n') {
      kind = NULL_;
      ok = literal("null");
    } else {
      kind = NUMBER;
      ok = number();
    }
    free(scratch.p);
    if (ok && keep) keep->kind = kind;
    return ok;
  }

  // false: not JSON (JSON.parse throws)
  bool parse() {
    Kind k;
    if (!value(0, 0, 0, k)) return false;
    ws();
    if (i != n) return false;
    top = k;
    return true;
  }
};

// ---- paths as path.join leaves them ----

// a name path.join keeps as it is: not empty, no '/', not "." or ".."
bool plain_name(const char* s) { return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0; }

// an absolute path path.join keeps as it is: every component a plain name, no trailing '/'
bool plain_abs(const char* s) {
  if (s[0] != '/') return false;
  const char* p = s + 1;
  for (;;) {
    const char* end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return false;
    if (!end) return true;
    p = end + 1;
  }
}

// no ".." component: the kernel resolves the path as path.join's lexical normalization does
bool no_dotdot(const char* s) {
  const char* p = s;
  for (;;) {
    const char* end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') return false;
    if (!end) return true;
    p = end + 1;
  }
}

// ---- main.ts's decisions ----

struct Flags {
  const char* namespace_ = "";
  const char* address = "";
  const char* publish_binary = "";
  const char* id = "";
  const char* socket = "";
  const char* action = "";
  bool debug = false;
};

// main.ts's parseFlags: Go's flag forms (-name value, -name=value, --name value, -debug alone).
Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (a[0] != '-') {
      f.action = a;
      continue;
    }
    const char* name = a + 1;
    if (*name == '-') name++;
    const char* eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const char* inl = eq ? eq + 1 : nullptr;
    auto is = [&](const char* w) { return nlen == strlen(w) && memcmp(name, w, nlen) == 0; };
    if (is("debug") || is("v")) {
      f.debug = !inl || strcmp(inl, "true") == 0;
      continue;
    }
    const char* value = inl ? inl : i + 1 < argc ? argv[++i] : "";
    if (is("namespace")) f.namespace_ = value;
    else if (is("address")) f.address = value;
    else if (is("publish-binary")) f.publish_binary = value;
    else if (is("id")) f.id = value;
    else if (is("socket")) f.socket = value;
  }
  return f;
}

bool shared() {
  const char* s = getenv("TSRUN_SHIM_SHARED");
  return s && strcmp(s, "1") == 0;
}

// main.ts's groupOf(bundle, id) into group. false: node decides (the file or the value is not one the
// launcher judges exactly as JSON.parse and path.join would).
bool group_of(const char* id, Buf& group) {
  Buf text;
  int r = read_file("config.json", text);
  if (r < 0) return false;
  const char* g = id;
  if (r > 0) {
    if (!valid_utf8(text.p, text.len)) return false;
    static const char* const keys[2] = {"io.containerd.tsrun.shim-group", "io.kubernetes.cri.sandbox-id"};
    Json j(text, "annotations", keys, 2);
    if (!j.parse()) {
      if (j.gave_up || g_oom) return false;
      g = id;  // JSON.parse throws: caught
    } else if (j.lone_surrogate) {
      return false;
    } else if (j.top == NULL_) {
      g = id;  // null.annotations throws: caught
    } else if (shared()) {
      g = "tsrun-shared";
    } else if (j.top == OBJECT && j.found.kind == OBJECT) {
      // a[k1] || a[k2] || id: a non-empty string wins; "", false and null fall through; anything else
      // (numbers, true, objects) is node's (path.join of a non-string throws)
      g = nullptr;
      for (int k = 0; k < 2 && !g; k++) {
        Value& v = j.inner[k];
        if (v.kind == STRING && v.str.len > 0) {
          if (memchr(v.str.p, 0, v.str.len)) return false;
          if (!group.add(v.str.p, v.str.len)) return false;
          return true;
        }
        if (v.kind != NONE && v.kind != FALSE_ && v.kind != NULL_ && v.kind != STRING) return false;
      }
      g = id;
    }
  }
  group.clear();
  return group.add(g);
}

// main.ts's socketPath(address, namespace, group): SOCKET_DIR/sha256(path.join(address, namespace, group) +
// "#tsrun"), for the inputs path.join returns as they are. false: node decides.
bool socket_path(const Flags& f, const char* group, char out[PATH_MAX]) {
  if (!plain_abs(f.address) || !plain_name(f.namespace_) || !plain_name(group)) return false;
  Sha256 h;
  h.update(f.address, strlen(f.address));
  h.update("/", 1);
  h.update(f.namespace_, strlen(f.namespace_));
  h.update("/", 1);
  h.update(group, strlen(group));
  h.update("#tsrun", 6);
  char hex[65];
  h.hex(hex);
  snprintf(out, PATH_MAX, "%s/%s", SOCKET_DIR, hex);
  return true;
}

enum Probe { ALIVE, DEAD, UNSURE };

// main.ts's alive(): a connection is accepted. A full backlog (EAGAIN) or anything unexpected: UNSURE.
Probe probe(const char* sock) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return UNSURE;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(sock) >= sizeof a.sun_path) {
    close(fd);
    return UNSURE;
  }
  strcpy(a.sun_path, sock);
  int r = connect(fd, (struct sockaddr*)&a, sizeof a);
  int e = errno;
  close(fd);
  if (r == 0) return ALIVE;
  return e == ECONNREFUSED || e == ENOENT ? DEAD : UNSURE;
}

void reset_signals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
}

// One start of the server: 0 ready; else node's exit status (-2: killed by a signal, -3: ended its output
// without a line and without exiting), with what it said (or "exit N") in `said`.
int spawn_once(const char* const* args, int null, int logfd, Buf& said) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) die("pipe2");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    reset_signals();
    if (setsid() < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(logfd >= 0 ? logfd : null, 2) < 0) _exit(127);
    execv(args[0], (char* const*)args);
    _exit(127);
  }
  close(p[1]);
  said.clear();
  char chunk[512];
  bool line = false;
  for (;;) {
    ssize_t r = read(p[0], chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    said.add(chunk, (size_t)r);
    if (memchr(said.p, '\n', said.len)) {
      line = true;
      break;
    }
  }
  close(p[0]);
  if (line) return strncmp(said.p, "ready", 5) == 0 ? 0 : -3;
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("waitpid");
  said.clear();
  char code[32];
  if (WIFEXITED(status)) snprintf(code, sizeof code, "exit %d", WEXITSTATUS(status));
  else snprintf(code, sizeof code, "exit null");
  said.add(code);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}

// The server, as main.ts's start spawns it: `node main.js -namespace .. -address .. -publish-binary .. -id ..
// -socket SOCK [-debug] serve` in its own session, stdin /dev/null, stdout a pipe read up to its first line
// ("ready"), stderr TSRUN_SHIM_LOG (appended) or the bundle's log FIFO (when containerd reads it) or nothing.
// From the startup snapshot dist/containerd-shim-tsrun-v2.blob when there is one (`node --snapshot-blob
// BLOB -- ARGS`); node refuses a blob it did not make (status 14, before it runs anything), and a blob made
// elsewhere may fail before "ready": then from main.js.
// 0: ready; 1: failed (said on stderr); -1: node decides (nothing was started).
int spawn_server(const Flags& f, const char* sock) {
  struct stat st;
  if (stat(SOCKET_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) return -1;  // node makes it
  if (unlink(sock) != 0 && errno != ENOENT) return -1;
  Node n;
  if (!locate(n)) return -1;
  char blob[PATH_MAX];
  char dir[PATH_MAX];
  bool with_blob = package_dir(dir, sizeof dir) && (size_t)snprintf(blob, sizeof blob, "%s%s", dir, BLOB) < sizeof blob && stat(blob, &st) == 0 && S_ISREG(st.st_mode);
  const char* log = getenv("TSRUN_SHIM_LOG");
  int logfd = log && *log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666) : open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) die("/dev/null");
  const char* args[20];
  int k = 0;
  args[k++] = n.node;
  int entry = k;
  if (with_blob) {
    args[k++] = "--snapshot-blob";
    args[k++] = blob;
    args[k++] = "--";
  } else {
    args[k++] = n.main_js;
  }
  int rest = k;
  args[k++] = "-namespace";
  args[k++] = f.namespace_;
  args[k++] = "-address";
  args[k++] = f.address;
  args[k++] = "-publish-binary";
  args[k++] = f.publish_binary;
  args[k++] = "-id";
  args[k++] = f.id;
  args[k++] = "-socket";
  args[k++] = sock;
  if (f.debug) args[k++] = "-debug";
  args[k++] = "serve";
  args[k] = nullptr;
  Buf said;
  int r = spawn_once(args, null, logfd, said);
  if (r != 0 && r != -3 && with_blob) {
    // The plain entry (main.js, then the same arguments) when the server exited before its first line from
    // the blob: node refused it (status 14), or it was made for another package directory or machine.
    if (unlink(sock) != 0 && errno != ENOENT) die("unlink");
    const char* plain[20];
    int m = 0;
    for (int i = 0; i < entry; i++) plain[m++] = args[i];
    plain[m++] = n.main_js;
    for (int i = rest; i <= k; i++) plain[m++] = args[i];
    r = spawn_once(plain, null, logfd, said);
  }
  if (logfd >= 0) close(logfd);
  close(null);
  if (r == 0) return 0;
  const char* b = said.p ? said.p : "";
  size_t len = said.len;
  while (len && strchr(" \t\n\r\v\f", b[0])) b++, len--;
  while (len && strchr(" \t\n\r\v\f", b[len - 1])) len--;
  dprintf(2, "tsrun shim: the shim server did not start: %.*s\n", (int)len, b);
  return 1;
}

// main.ts's start
int start(const Flags& f) {
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd) || cwd[0] != '/') exec_node();
  Buf group;
  char sock[PATH_MAX];
  if (!group_of(f.id, group) || !socket_path(f, group.p, sock)) exec_node();
  Probe p = probe(sock);
  if (p == UNSURE) exec_node();
  if (p == DEAD) {
    int r = spawn_server(f, sock);
    if (r < 0) exec_node();
    if (r > 0) return 1;
  }
  char address[PATH_MAX + 8];
  snprintf(address, sizeof address, "unix://%s", sock);
  int fd = open("address", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) {
    if (p == ALIVE) exec_node();
    die("the bundle's address file");
  }
  if (!write_all(fd, address, strlen(address))) die("the bundle's address file");
  close(fd);
  if (!write_all(1, address, strlen(address))) return 1;
  return 0;
}

// main.ts's deleteResponse(0, exitStatus, now): DeleteResponse {exit_status = 2, exited_at = 3 {seconds = 1,
// nanos = 2}} with node's millisecond clock
size_t varint(uint8_t* out, uint64_t v) {
  size_t n = 0;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    out[n++] = v ? b | 0x80 : b;
  } while (v);
  return n;
}

bool delete_response(uint32_t exit_status) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  uint8_t ts_msg[32], out[64];
  size_t t = 0, o = 0;
  ts_msg[t++] = 0x08;
  t += varint(ts_msg + t, (uint64_t)(ms / 1000));
  int64_t nanos = (ms % 1000) * 1000000;
  if (nanos) {
    ts_msg[t++] = 0x10;
    t += varint(ts_msg + t, (uint64_t)nanos);
  }
  if (exit_status) {
    out[o++] = 0x10;
    o += varint(out + o, exit_status);
  }
  out[o++] = 0x1a;
  o += varint(out + o, t);
  memcpy(out + o, ts_msg, t);
  o += t;
  return write_all(1, out, o);
}

// does /proc/self/mountinfo name path as a mount point (" PATH " on some line, as main.ts looks)? -1: unknown
int in_mountinfo(const char* path) {
  Buf needle;
  if (!needle.add(" ") || !needle.add(path) || !needle.add(" ")) return -1;
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  // chunks, keeping the last needle-length - 1 bytes for a match across two reads
  Buf win;
  char chunk[65536];
  int found = 0;
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      found = -1;
      break;
    }
    if (r == 0) break;
    if (!win.add(chunk, (size_t)r)) {
      found = -1;
      break;
    }
    if (memmem(win.p, win.len, needle.p, needle.len)) {
      found = 1;
      break;
    }
    if (win.len >= needle.len) {
      size_t keep = needle.len - 1;
      memmove(win.p, win.p + win.len - keep, keep);
      win.len = keep;
    }
  }
  close(fd);
  return found;
}

// main.ts's delete, when nothing is left to undo: no container under the tsrun root, the rootfs not a
// mount point, the group's socket alive or absent (or dead: removed, as main.ts removes it).
int remove(const Flags& f) {
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd) || cwd[0] != '/' || strcmp(cwd, "/") == 0) exec_node();
  if (!plain_name(f.id)) exec_node();
  // the tsrun root: the bundle's tsrun-shim.json {"root": ...}, else TSRUN_SHIM_ROOT (or the default)/NS
  Buf root;
  Buf text;
  int r = read_file("tsrun-shim.json", text);
  if (r < 0) exec_node();
  if (r > 0) {
    if (!valid_utf8(text.p, text.len)) exec_node();
    Json j(text, "root", nullptr, 0);
    if (!j.parse() || j.lone_surrogate || j.top != OBJECT || j.found.kind != STRING) exec_node();
    if (!root.add(j.found.str.p, j.found.str.len)) exec_node();
  } else {
    const char* env = getenv("TSRUN_SHIM_ROOT");
    const char* base = env && *env ? env : DEFAULT_ROOT;
    if (!plain_name(f.namespace_) || !root.add(base) || !root.add("/") || !root.add(f.namespace_)) exec_node();
  }
  if (!root.len || memchr(root.p, 0, root.len) || !no_dotdot(root.p)) exec_node();
  struct stat st;
  Buf dir;
  if (!dir.add(root.p) || !dir.add("/") || !dir.add(f.id)) exec_node();
  if (stat(dir.p, &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) exec_node();  // a container: node's
  // the rootfs, still mounted: node unmounts it (unmountAll in main.ts)
  char rootfs[PATH_MAX + 8];
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", cwd);
  struct stat rs, bs;
  if (stat(rootfs, &rs) == 0) {
    if (stat(cwd, &bs) != 0 || rs.st_dev != bs.st_dev) exec_node();
    if (in_mountinfo(rootfs) != 0) exec_node();
  }
  // the group's socket
  Buf group;
  char sock[PATH_MAX];
  if (!group_of(f.id, group) || !socket_path(f, group.p, sock)) exec_node();
  if (stat(sock, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) exec_node();
    Probe p = probe(sock);
    if (p == UNSURE) exec_node();
    if (p == DEAD && unlink(sock) != 0 && errno != ENOENT) exec_node();
  } else if (errno != ENOENT) {
    exec_node();
  }
  return delete_response(128 + 9) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  g_argc = argc;
  g_argv = argv;
  // node parses NODE_EXTRA_CA_CERTS's bundle at start-up (~55 ms of CPU for Debian's): the shim makes no TLS
  // connection, and containers get their environment from config.json.
  unsetenv("NODE_EXTRA_CA_CERTS");
  Flags f = parse_flags(argc, argv);
  if (strcmp(f.action, "start") == 0) return start(f);
  if (strcmp(f.action, "delete") == 0) return remove(f);
  if (strcmp(f.action, "serve") != 0) {
    for (int i = 1; i < argc; i++) {
      if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--version") == 0) {
        const char v[] = "containerd-shim-tsrun-v2: tsrun\n";
        return write_all(1, v, sizeof v - 1) ? 0 : 1;
      }
    }
  }
  exec_node();
}
