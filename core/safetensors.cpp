// safetensors reading and writing; the format is described in core/safetensors.h.
//
// Reading goes in two steps so that a corrupt file can never make us allocate or copy
// nonsense: (1) check the 8-byte length prefix against the file size and parse + validate
// the JSON header completely (dtypes, shapes, offsets, full coverage of the data buffer);
// (2) only then allocate each tensor and copy its bytes. Step 1 is shared by the file
// reader (which reads tensor bytes straight from the file with pread) and the in-memory
// parser.
//
// The file I/O uses POSIX calls (open, pread, write, fsync, rename) because an atomic,
// durable write needs fsync, which C++ streams do not offer.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/copy.h"
#include "core/json.h"

// Tensor bytes are copied between memory and file as they are, and the format stores them
// little-endian: this is only right on a little-endian machine (x86-64, and ARM as usually
// run). A big-endian port would byte-swap each element here.
static_assert(std::endian::native == std::endian::little,
              "tensorzoo's safetensors I/O assumes a little-endian machine");

namespace tz {

namespace {

using json = nlohmann::json;

// Same limit as the reference implementation: a header beyond 100 MB is not a real header.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// ---- errors ------------------------------------------------------------------------------

// Every reading error looks like: safetensors: 'file': <problem>; hint: <hint>
[[noreturn]] void fail(const std::string& file, const std::string& problem, const std::string& hint) {
  throw Error(cat_str("safetensors: '", file, "': ", problem, "; hint: ", hint));
}

std::string os_error(int err) { return cat_str(std::strerror(err), " (errno ", err, ")"); }

// ---- dtypes ------------------------------------------------------------------------------

struct DTypeInfo {
  const char* name;  // as spelled in the header
  uint64_t size;     // bytes per element
  bool supported;    // does tensorzoo read this dtype?
  DType dtype;       // meaningful only when supported: the dtype it is read as
};

constexpr DTypeInfo kDTypes[] = {
    {"F32", 4, true, DType::f32},  {"F64", 8, true, DType::f64},  {"I64", 8, true, DType::i64},
    {"F16", 2, false, DType::f32}, {"BF16", 2, true, DType::f32}, {"I32", 4, false, DType::f32},
    {"I8", 1, false, DType::f32},  {"U8", 1, false, DType::f32},  {"BOOL", 1, false, DType::f32},
};

const char* header_dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    default:
      return "I64";
  }
}

// ---- step 1: the length prefix and the header ----------------------------------------------

// One tensor as described by the header, after validation.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range in the data buffer
  bool bf16 = false;            // stored as BF16, read as f32
  std::string raw;              // the file's dtype when read as raw bytes (keep_raw)
};

struct Header {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

// Decodes and checks the header length N from the first bytes of a file of `file_size`
// bytes; `prefix` holds min(8, file_size) bytes.
uint64_t check_prefix(const uint8_t* prefix, uint64_t file_size, const std::string& file) {
  if (file_size < 8)
    fail(file,
         cat_str("file is ", file_size,
                 " bytes, shorter than the 8-byte header length "
                 "that starts every safetensors file"),
         "the file is truncated or is not a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];  // little-endian
  if (n > kMaxHeaderBytes)
    fail(file,
         cat_str("header length ", n, " (bytes 0..7) is absurd: more than the ", kMaxHeaderBytes,
                 "-byte limit (file size ", file_size, ")"),
         "the first 8 bytes should be a little-endian header length; this is not a "
         "safetensors file or its start is damaged");
  if (n > file_size - 8)
    fail(file,
         cat_str("header length ", n,
                 " (bytes 0..7) runs past the end of the file: the "
                 "header would end at byte ",
                 8 + n, " but the file has ", file_size, " bytes"),
         "the file is truncated (an interrupted download or copy?) or is not a safetensors file");
  return n;
}

// JSON type names for messages.
std::string json_type(const json& j) {
  if (j.is_number_unsigned() || j.is_number_integer()) return "an integer";
  if (j.is_number_float()) return "a floating-point number";
  return cat_str("a JSON ", j.type_name());
}

// A non-negative JSON integer, or an error naming `what`.
uint64_t get_count(const json& j, const std::string& file, const std::string& what) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer())  // a signed integer in nlohmann is negative here
    fail(file, cat_str(what, " is negative (", j.get<int64_t>(), ")"),
         "sizes and offsets must be non-negative integers");
  fail(file, cat_str(what, " is ", json_type(j), " (", j.dump(), "), expected a non-negative integer"),
       "sizes and offsets must be written as plain integers such as 3, not 3.0 or \"3\"");
}

const json& member(const json& entry, const char* key, const std::string& file, const std::string& where) {
  auto it = entry.find(key);
  if (it == entry.end())
    fail(file, cat_str(where, " has no \"", key, "\" (it has ", entry.dump(), ")"),
         "each tensor entry needs \"dtype\", \"shape\" and \"data_offsets\"");
  return *it;
}

// Parses the header text (core/json.h: linear time, nesting at most 64 deep, no repeated
// keys), with the header's byte and the file's byte in the message.
json parse_header_json(std::string_view text, const std::string& file) {
  try {
    return parse_json(text, "header");
  } catch (const JsonError& e) {
    const std::string where = e.path().empty() ? "" : cat_str(" at ", e.path());
    if (e.byte() < 0)
      fail(file, cat_str(e.problem(), where, " in the header"),
           "the header must be a flat object of tensor entries; the file is corrupt or crafted");
    fail(file,
         cat_str("header is not valid JSON at header byte ", e.byte(), " (file byte ", 8 + e.byte(), ")", where, ": ",
                 e.problem()),
         "the header (bytes 8 onwards) must be UTF-8 JSON; the file is corrupt or not a "
         "safetensors file");
  }
}

// Parses and validates the whole header against a data buffer of `data_size` bytes that
// starts at file byte `data_start`.
Header parse_header(std::string_view text, uint64_t data_size, uint64_t data_start, const std::string& file,
                    bool keep_raw = false) {
  json root = parse_header_json(text, file);
  if (!root.is_object())
    fail(file, cat_str("header is ", json_type(root), ", expected a JSON object {name: entry}"),
         "the header must be an object mapping tensor names to {dtype, shape, data_offsets}");

  Header h;
  for (const auto& [name, entry] : root.items()) {
    // The optional metadata: string -> string.
    if (name == "__metadata__") {
      if (!entry.is_object())
        fail(file, cat_str("\"__metadata__\" is ", json_type(entry), ", expected an object"),
             "metadata must be an object of string -> string");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          fail(file,
               cat_str("metadata value of \"", key, "\" is ", json_type(value), " (", value.dump(),
                       "), expected a string"),
               "the format only allows string metadata values; store numbers and objects "
               "as text (e.g. a JSON string)");
        h.metadata[key] = value.get<std::string>();
      }
      continue;
    }

    const std::string where = cat_str("tensor '", name, "'");
    if (!entry.is_object())
      fail(file, cat_str(where, " is ", json_type(entry), ", expected an object"),
           "each tensor entry is {\"dtype\": ..., \"shape\": [...], \"data_offsets\": [begin, end]}");
    Entry e;
    e.name = name;

    // dtype: one of the names in kDTypes.
    const json& jd = member(entry, "dtype", file, where);
    if (!jd.is_string())
      fail(file, cat_str(where, ": \"dtype\" is ", json_type(jd), ", expected a string such as \"F32\""),
           "dtype must be a string such as \"F32\"");
    const std::string dname = jd.get<std::string>();
    const DTypeInfo* info = nullptr;
    for (const DTypeInfo& d : kDTypes)
      if (dname == d.name) info = &d;
    if (!info) fail(file, cat_str(where, ": unknown dtype \"", dname, "\""), "tensorzoo reads F32, F64, I64 and BF16");
    if (keep_raw && (dname == "I8" || dname == "BF16")) e.raw = dname;
    if (!info->supported && e.raw.empty())
      fail(file, cat_str(where, ": dtype ", dname, " is not supported by tensorzoo"),
           "tensorzoo reads F32, F64, I64 and BF16; convert the checkpoint first (in PyTorch: "
           "{k: v.float() for k, v in state_dict.items()})");
    e.dtype = info->dtype;
    e.bf16 = dname == "BF16";

    // shape: a list of non-negative integers; also count the elements without overflow.
    const json& js = member(entry, "shape", file, where);
    if (!js.is_array())
      fail(file, cat_str(where, ": \"shape\" is ", json_type(js), ", expected a list of integers"),
           "shape must be a list such as [2, 3] ([] for a scalar)");
    if (int64_t(js.size()) > kMaxDims)
      fail(file, cat_str(where, ": shape has ", js.size(), " dimensions, more than tensorzoo's ", kMaxDims),
           "reshape the tensor to fewer dimensions before saving");
    // Element counts are capped (core/shape.h) so that numel * 8 bytes cannot overflow.
    constexpr uint64_t kMaxCount = uint64_t(kMaxNumel);
    uint64_t numel = 1;
    bool has_zero = false;
    for (size_t d = 0; d < js.size(); ++d) {
      uint64_t n = get_count(js[d], file, cat_str(where, ": shape entry ", d));
      if (n > kMaxCount)
        fail(file, cat_str(where, ": shape entry ", d, " is ", n, ", absurdly large"), "the shape is corrupt");
      if (n == 0)
        has_zero = true;
      else if (numel > kMaxCount / n)  // the product would pass the cap
        numel = kMaxCount + 1;
      else
        numel *= n;
      e.shape.push_back(int64_t(n));
    }
    if (has_zero) numel = 0;  // a zero anywhere makes the tensor empty
    if (numel > kMaxCount)
      fail(file, cat_str(where, ": shape ", js.dump(), " has too many elements to exist"), "the shape is corrupt");

    // data_offsets: [begin, end] inside the data buffer, of the right length.
    const json& jo = member(entry, "data_offsets", file, where);
    if (!jo.is_array() || jo.size() != 2)
      fail(file, cat_str(where, ": \"data_offsets\" is ", jo.dump(), ", expected [begin, end]"),
           "data_offsets holds two byte positions relative to the start of the data buffer");
    e.begin = get_count(jo[0], file, cat_str(where, ": data_offsets begin"));
    e.end = get_count(jo[1], file, cat_str(where, ": data_offsets end"));
    if (e.begin > e.end)
      fail(file, cat_str(where, ": data_offsets [", e.begin, ", ", e.end, "] has begin > end"),
           "data_offsets must be [begin, end] with begin <= end");
    const uint64_t need = numel * info->size;
    if (e.end - e.begin != need)
      fail(file,
           cat_str(where, ": data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes but shape ",
                   js.dump(), " of ", dname, " needs ", need, " bytes"),
           "the shape, dtype and offsets of this entry disagree; the header is corrupt");
    if (e.end > data_size)
      fail(file,
           cat_str(where, ": data_offsets [", e.begin, ", ", e.end, "] (file bytes [", data_start + e.begin, ", ",
                   data_start + e.end, ")) run past the end of the data buffer, which has ", data_size,
                   " bytes (file ends at byte ", data_start + data_size, ")"),
           "the file is truncated (an interrupted download or copy?)");
    h.entries.push_back(std::move(e));
  }

  // The tensors must tile the data buffer exactly: sort by begin and walk a cursor along.
  // Empty tensors occupy no bytes and can sit anywhere in range, so they are left out.
  std::vector<const Entry*> order;
  for (const Entry& e : h.entries)
    if (e.end > e.begin) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    if (e->begin < cursor)
      fail(file,
           cat_str("tensors '", prev->name, "' [", prev->begin, ", ", prev->end, "] and '", e->name, "' [", e->begin,
                   ", ", e->end, "] overlap from data byte ", e->begin, " (file byte ", data_start + e->begin, ")"),
           "each byte of the data buffer belongs to exactly one tensor; the header is corrupt");
    if (e->begin > cursor)
      fail(file,
           cat_str("data bytes [", cursor, ", ", e->begin, ") (file bytes [", data_start + cursor, ", ",
                   data_start + e->begin, ")) belong to no tensor (gap before '", e->name, "')"),
           "the format requires the tensors to cover the data buffer with no gaps");
    cursor = e->end;
    prev = e;
  }
  if (cursor != data_size)
    fail(file,
         cat_str("data bytes [", cursor, ", ", data_size, ") (file bytes [", data_start + cursor, ", ",
                 data_start + data_size, ")) at the end of the file belong to no tensor"),
         "the format requires the tensors to cover the data buffer exactly; the file has "
         "trailing bytes (appended garbage?) or the header is corrupt");
  return h;
}

// ---- small POSIX helpers -------------------------------------------------------------------

// Closes a file descriptor when it goes out of scope.
struct FileHandle {
  int fd = -1;
  FileHandle() = default;
  explicit FileHandle(int f) : fd(f) {}
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens `path` for reading and returns its size; errors name the path.
uint64_t open_for_reading(const std::string& path, FileHandle& fh) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  fh.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fh.fd < 0)
    throw Error(cat_str("safetensors: cannot open '", path, "': ", os_error(errno),
                        "; hint: check the path and its permissions"));
  struct stat st {};
  if (::fstat(fh.fd, &st) != 0) throw Error(cat_str("safetensors: cannot stat '", path, "': ", os_error(errno)));
  if (!S_ISREG(st.st_mode))
    throw Error(cat_str("safetensors: '", path, "' is not a regular file (a directory, FIFO or device)"));
  return uint64_t(st.st_size);
}

// Reads exactly n bytes at file offset `at` (pread handles partial reads and EINTR here).
void read_at(int fd, void* dst, uint64_t n, uint64_t at, const std::string& path) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, off_t(at));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(cat_str("safetensors: reading '", path, "' at byte ", at, " failed: ", os_error(errno)));
    if (got == 0)
      throw Error(cat_str("safetensors: '", path, "' ended early at byte ", at,
                          "; hint: was the file changed while being read?"));
    p += got;
    n -= uint64_t(got);
    at += uint64_t(got);
  }
}

// Reads the length prefix and the header text of an open file.
std::string read_header_text(int fd, uint64_t file_size, const std::string& path) {
  uint8_t prefix[8] = {};
  read_at(fd, prefix, std::min<uint64_t>(file_size, 8), 0, path);
  uint64_t n = check_prefix(prefix, file_size, path);
  std::string text(n, '\0');
  read_at(fd, text.data(), n, 8, path);
  return text;
}

}  // namespace

// ---- bfloat16 ----------------------------------------------------------------------------------

uint16_t f32_to_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40u);  // NaN: keep it quiet NaN
  // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate.
  return uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(uint32_t(bits) << 16); }

namespace {
void widen_bf16(const uint16_t* bits, Tensor& t) {
  float* out = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = bf16_to_f32(bits[i]);
}
}  // namespace

// ---- reading ---------------------------------------------------------------------------------

TensorFile load_safetensors(const std::string& path, bool keep_raw) {
  FileHandle fh;
  uint64_t size = open_for_reading(path, fh);
  std::string text = read_header_text(fh.fd, size, path);
  const uint64_t data_start = 8 + text.size();
  Header h = parse_header(text, size - data_start, data_start, path, keep_raw);
  // Step 2: the header is valid, so every allocation is backed by bytes of the file.
  TensorFile out;
  out.metadata = std::move(h.metadata);
  for (const Entry& e : h.entries) {
    if (!e.raw.empty()) {
      RawTensor r{e.raw, e.shape, std::vector<uint8_t>(size_t(e.end - e.begin))};
      if (e.end > e.begin) read_at(fh.fd, r.bytes.data(), e.end - e.begin, data_start + e.begin, path);
      out.raw.emplace(e.name, std::move(r));
      continue;
    }
    Tensor t = empty(e.shape, e.dtype);
    if (e.bf16) {
      std::vector<uint16_t> bits(size_t(t.numel()));
      read_at(fh.fd, bits.data(), e.end - e.begin, data_start + e.begin, path);
      widen_bf16(bits.data(), t);
      out.file_dtypes[e.name] = "BF16";
    } else {
      read_at(fh.fd, t.raw_data(), e.end - e.begin, data_start + e.begin, path);
    }
    out.tensors.emplace(e.name, t);
  }
  return out;
}

TensorFile parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& name) {
  const uint64_t size = bytes.size();
  uint64_t n = check_prefix(bytes.data(), size, name);
  std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, n);
  const uint64_t data_start = 8 + n;
  Header h = parse_header(text, size - data_start, data_start, name);
  TensorFile out;
  out.metadata = std::move(h.metadata);
  for (const Entry& e : h.entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.bf16) {
      std::vector<uint16_t> bits(size_t(t.numel()));
      if (e.end > e.begin) std::memcpy(bits.data(), bytes.data() + data_start + e.begin, e.end - e.begin);
      widen_bf16(bits.data(), t);
      out.file_dtypes[e.name] = "BF16";
    } else if (e.end > e.begin) {
      std::memcpy(t.raw_data(), bytes.data() + data_start + e.begin, e.end - e.begin);
    }
    out.tensors.emplace(e.name, t);
  }
  return out;
}

std::string safetensors_header_json(const std::string& path) {
  FileHandle fh;
  uint64_t size = open_for_reading(path, fh);
  return read_header_text(fh.fd, size, path);
}

// ---- writing ---------------------------------------------------------------------------------

namespace {

// Writes all n bytes (write may take fewer at a time); returns 0 or the errno.
int write_all(int fd, const void* src, size_t n) {
  const auto* p = static_cast<const char*>(src);
  while (n > 0) {
    ssize_t put = ::write(fd, p, n);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return errno;
    p += put;
    n -= size_t(put);
  }
  return 0;
}

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata, StoreF32 store,
                      const std::map<std::string, RawTensor>& raw) {
  // Lay out the tensors in name order, back to back, as contiguous copies (f32 narrowed to
  // BF16 bits when asked), the raw ones' bytes as they are.
  json header = json::object();
  struct Part {
    Tensor c;                      // a tensor's contiguous copy, or
    std::vector<uint16_t> bits;    // its BF16 bits, or
    const RawTensor* r = nullptr;  // raw bytes
  };
  std::map<std::string, Part> parts;
  for (const auto& [name, t] : tensors) {
    TZ_CHECK(t.defined(), "save_safetensors: '", path, "': tensor '", name, "' is undefined");
    Part p{core::contiguous(t)};
    if (store == StoreF32::bf16 && p.c.dtype() == DType::f32) {
      p.bits.resize(size_t(p.c.numel()));
      const float* x = p.c.data<float>();
      for (size_t i = 0; i < p.bits.size(); ++i) p.bits[i] = f32_to_bf16(x[i]);
    }
    parts.emplace(name, std::move(p));
  }
  for (const auto& [name, r] : raw) {
    TZ_CHECK(!parts.count(name), "save_safetensors: '", path, "': tensor '", name, "' given twice");
    TZ_CHECK(r.dtype == "I8" || r.dtype == "BF16", "save_safetensors: '", path, "': raw tensor '", name,
             "' has dtype '", r.dtype, "' (expected I8 or BF16)");
    TZ_CHECK(r.bytes.size() == uint64_t(shape_numel(r.shape)) * (r.dtype == "I8" ? 1 : 2), "save_safetensors: '", path,
             "': raw tensor '", name, "' has ", r.bytes.size(), " bytes for ", r.dtype, " ", r.shape);
    parts.emplace(name, Part{Tensor(), {}, &r});
  }
  uint64_t offset = 0;
  for (const auto& [name, p] : parts) {
    TZ_CHECK(name != "__metadata__", "save_safetensors: '", path,
             "': \"__metadata__\" cannot be a tensor name (the format reserves it for metadata)");
    const uint64_t nbytes = p.r               ? p.r->bytes.size()
                            : !p.bits.empty() ? uint64_t(p.c.numel()) * 2
                                              : uint64_t(p.c.numel()) * dtype_size(p.c.dtype());
    const std::string dtype = p.r ? p.r->dtype : !p.bits.empty() ? "BF16" : header_dtype_name(p.c.dtype());
    header[name] = {
        {"dtype", dtype}, {"shape", p.r ? p.r->shape : p.c.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::type_error& e) {  // a name or metadata string that is not UTF-8
    throw Error(cat_str("save_safetensors: '", path,
                        "': tensor names and metadata must be "
                        "valid UTF-8: ",
                        e.what()));
  }
  // Pad with spaces (JSON whitespace) so the data buffer starts at a multiple of 8 bytes.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = uint8_t(uint64_t(text.size()) >> (8 * i));

  // Write to a temporary file in the same directory (rename is only atomic within one
  // file system), flush it to disk, then rename it over the target.
  const std::string tmp = cat_str(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(cat_str("save_safetensors: cannot write '", path, "': creating the temporary file '", tmp,
                        "' failed: ", os_error(errno), "; hint: does the directory exist and is it writable?"));
  auto give_up = [&](const char* step, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(cat_str("save_safetensors: cannot write '", path, "': ", step, " '", tmp, "' failed: ", os_error(err),
                        "; the old file (if any) is unchanged"));
  };
  if (int err = write_all(fd, prefix, 8)) give_up("writing", err);
  if (int err = write_all(fd, text.data(), text.size())) give_up("writing", err);
  for (const auto& [name, p] : parts) {
    const void* src = p.r               ? static_cast<const void*>(p.r->bytes.data())
                      : !p.bits.empty() ? static_cast<const void*>(p.bits.data())
                                        : p.c.raw_data();
    const size_t nbytes = p.r               ? p.r->bytes.size()
                          : !p.bits.empty() ? p.bits.size() * 2
                                            : size_t(p.c.numel()) * dtype_size(p.c.dtype());
    if (nbytes == 0) continue;
    if (int err = write_all(fd, src, nbytes)) give_up("writing", err);
  }
  if (::fsync(fd) != 0) give_up("flushing (fsync)", errno);
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) give_up("closing", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) give_up("renaming over the target", errno);
  // Make the rename itself durable; best effort (some file systems refuse to sync a directory).
  int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace tz
