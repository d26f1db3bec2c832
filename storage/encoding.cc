#include "storage/encoding.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace recd::storage {
namespace {

static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559,
              "floats are stored as IEEE-754 binary32");
static_assert(sizeof(double) == 8 && std::numeric_limits<double>::is_iec559,
              "doubles are stored as IEEE-754 binary64");

constexpr char kMarkerMagic[] = "recd-store";

// Flag bits of interaction records. Unknown bits are corruption: a future format that needs
// more flags bumps kValueEncodingVersion.
constexpr uint8_t kFlagHasValue = 0x01;
constexpr uint8_t kKnownInteractionFlags = kFlagHasValue;
// Flag bits of item records.
constexpr uint8_t kFlagActive = 0x01;
constexpr uint8_t kFlagDeleted = 0x02;
constexpr uint8_t kKnownItemFlags = kFlagActive | kFlagDeleted;

absl::Status Corrupt(absl::string_view kind, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt ", kind, ": ", what));
}

// Consumes and checks the leading encoding-version byte of a value.
absl::Status CheckVersion(Decoder& in, absl::string_view kind) {
  uint8_t version;
  if (!in.GetU8(&version)) return Corrupt(kind, "empty value");
  if (version != kValueEncodingVersion) {
    return Corrupt(kind, absl::StrCat("unknown encoding version ", version, " (this build reads ",
                                      kValueEncodingVersion, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckDone(const Decoder& in, absl::string_view kind) {
  if (!in.done()) return Corrupt(kind, absl::StrCat(in.remaining(), " trailing bytes"));
  return absl::OkStatus();
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

void PutInteractionFields(std::string* dst, EventType event, bool has_value, float value,
                          int64_t timestamp_ms) {
  PutU8(dst, static_cast<uint8_t>(event));
  PutU8(dst, has_value ? kFlagHasValue : 0);
  PutFloat(dst, value);
  PutVarsint64(dst, timestamp_ms);
}

absl::Status GetInteractionFields(Decoder& in, absl::string_view kind, EventType* event,
                                  bool* has_value, float* value, int64_t* timestamp_ms) {
  uint8_t event_byte, flags;
  if (!in.GetU8(&event_byte) || !in.GetU8(&flags) || !in.GetFloat(value) ||
      !in.GetVarsint64(timestamp_ms)) {
    return Corrupt(kind, "truncated");
  }
  if (!IsValidEventType(event_byte)) {
    return Corrupt(kind, absl::StrCat("unknown event type ", event_byte));
  }
  if ((flags & ~kKnownInteractionFlags) != 0) {
    return Corrupt(kind, absl::StrCat("unknown flags 0x", absl::Hex(flags)));
  }
  *event = static_cast<EventType>(event_byte);
  *has_value = (flags & kFlagHasValue) != 0;
  return absl::OkStatus();
}

void PutStringList(std::string* dst, const std::vector<std::string>& list) {
  PutVarint32(dst, static_cast<uint32_t>(list.size()));
  for (const std::string& s : list) PutLengthPrefixed(dst, s);
}

// Each element takes at least one byte, so a garbage count cannot make the loop outlast the
// input; nothing is reserved up front.
bool GetStringList(Decoder& in, std::vector<std::string>* list) {
  uint32_t n;
  if (!in.GetVarint32(&n) || n > in.remaining()) return false;
  list->clear();
  for (uint32_t i = 0; i < n; ++i) {
    absl::string_view s;
    if (!in.GetLengthPrefixed(&s)) return false;
    list->emplace_back(s);
  }
  return true;
}

void PutShape(std::string* dst, const MatrixShape& shape) {
  PutVarint64(dst, shape.rows);
  PutVarint64(dst, shape.cols);
  PutVarint32(dst, shape.rows_per_chunk);
}

absl::Status GetShape(Decoder& in, absl::string_view what, MatrixShape* shape) {
  constexpr absl::string_view kKind = "model manifest";
  if (!in.GetVarint64(&shape->rows) || !in.GetVarint64(&shape->cols) ||
      !in.GetVarint32(&shape->rows_per_chunk)) {
    return Corrupt(kKind, absl::StrCat("truncated shape of ", what));
  }
  if (shape->rows > kMaxMatrixRows || shape->cols > kMaxMatrixCols ||
      shape->rows * shape->cols > kMaxMatrixValues || shape->rows_per_chunk == 0) {
    return Corrupt(kKind, absl::StrCat("implausible shape of ", what, ": ", shape->rows, " x ",
                                       shape->cols, ", ", shape->rows_per_chunk,
                                       " rows per chunk"));
  }
  return absl::OkStatus();
}

std::string IndexKey(IdKeyKind kind, uint32_t index) {
  std::string key;
  key.reserve(5);
  PutU8(&key, static_cast<uint8_t>(kind));
  PutFixed32BE(&key, index);
  return key;
}

std::string StringKey(IdKeyKind kind, absl::string_view id) {
  std::string key;
  key.reserve(1 + id.size());
  PutU8(&key, static_cast<uint8_t>(kind));
  key.append(id.data(), id.size());
  return key;
}

}  // namespace

// ---- Primitives ------------------------------------------------------------------------------

void PutU8(std::string* dst, uint8_t v) { dst->push_back(static_cast<char>(v)); }

void PutFixed32BE(std::string* dst, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>(v >> (24 - 8 * i));
  dst->append(buf, 4);
}

void PutFixed64BE(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (56 - 8 * i));
  dst->append(buf, 8);
}

void PutFixed32LE(std::string* dst, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  dst->append(buf, 4);
}

void PutFixed64LE(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  dst->append(buf, 8);
}

void PutFloat(std::string* dst, float v) { PutFixed32LE(dst, std::bit_cast<uint32_t>(v)); }
void PutDouble(std::string* dst, double v) { PutFixed64LE(dst, std::bit_cast<uint64_t>(v)); }

void PutVarint32(std::string* dst, uint32_t v) { PutVarint64(dst, v); }

void PutVarint64(std::string* dst, uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

void PutVarsint64(std::string* dst, int64_t v) { PutVarint64(dst, ZigZag(v)); }

void PutLengthPrefixed(std::string* dst, absl::string_view s) {
  PutVarint64(dst, s.size());
  dst->append(s.data(), s.size());
}

uint32_t DecodeFixed32BE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

uint64_t DecodeFixed64BE(const char* p) {
  return (uint64_t{DecodeFixed32BE(p)} << 32) | DecodeFixed32BE(p + 4);
}

bool Decoder::GetU8(uint8_t* v) {
  if (in_.empty()) return false;
  *v = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return true;
}

bool Decoder::GetFixed32BE(uint32_t* v) {
  if (in_.size() < 4) return false;
  *v = DecodeFixed32BE(in_.data());
  in_.remove_prefix(4);
  return true;
}

bool Decoder::GetFixed64BE(uint64_t* v) {
  if (in_.size() < 8) return false;
  *v = DecodeFixed64BE(in_.data());
  in_.remove_prefix(8);
  return true;
}

bool Decoder::GetFixed32LE(uint32_t* v) {
  if (in_.size() < 4) return false;
  const auto* u = reinterpret_cast<const unsigned char*>(in_.data());
  *v = uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) | (uint32_t{u[3]} << 24);
  in_.remove_prefix(4);
  return true;
}

bool Decoder::GetFixed64LE(uint64_t* v) {
  uint32_t lo, hi;
  if (in_.size() < 8) return false;
  GetFixed32LE(&lo);
  GetFixed32LE(&hi);
  *v = (uint64_t{hi} << 32) | lo;
  return true;
}

bool Decoder::GetFloat(float* v) {
  uint32_t bits;
  if (!GetFixed32LE(&bits)) return false;
  *v = std::bit_cast<float>(bits);
  return true;
}

bool Decoder::GetDouble(double* v) {
  uint64_t bits;
  if (!GetFixed64LE(&bits)) return false;
  *v = std::bit_cast<double>(bits);
  return true;
}

bool Decoder::GetVarint32(uint32_t* v) {
  absl::string_view saved = in_;
  uint64_t wide;
  if (!GetVarint64(&wide) || wide > std::numeric_limits<uint32_t>::max()) {
    in_ = saved;
    return false;
  }
  *v = static_cast<uint32_t>(wide);
  return true;
}

bool Decoder::GetVarint64(uint64_t* v) {
  uint64_t result = 0;
  for (size_t i = 0; i < in_.size() && i < 10; ++i) {
    const uint64_t byte = static_cast<unsigned char>(in_[i]);
    // The tenth byte may only carry the top bit of a 64-bit value.
    if (i == 9 && byte > 1) return false;
    result |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      *v = result;
      in_.remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

bool Decoder::GetVarsint64(int64_t* v) {
  uint64_t u;
  if (!GetVarint64(&u)) return false;
  *v = UnZigZag(u);
  return true;
}

bool Decoder::GetLengthPrefixed(absl::string_view* v) {
  absl::string_view saved = in_;
  uint64_t n;
  if (!GetVarint64(&n) || n > in_.size()) {
    in_ = saved;
    return false;
  }
  *v = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

bool Decoder::GetBytes(size_t n, absl::string_view* v) {
  if (n > in_.size()) return false;
  *v = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

// ---- Meta -------------------------------------------------------------------------------------

std::string ModelLastVersionKey(absl::string_view model_name) {
  return absl::StrCat("model.last_version/", model_name);
}

std::string ModelLiveVersionKey(absl::string_view model_name) {
  return absl::StrCat("model.live/", model_name);
}

std::string EncodeMarkerValue() {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  v.append(kMarkerMagic);
  return v;
}

absl::Status DecodeMarkerValue(absl::string_view value) {
  constexpr absl::string_view kKind = "store marker";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  if (in.rest() != kMarkerMagic) return Corrupt(kKind, "wrong magic");
  return absl::OkStatus();
}

std::string EncodeFormatVersionValue(uint32_t format_version) {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  PutVarint32(&v, format_version);
  return v;
}

absl::StatusOr<uint32_t> DecodeFormatVersionValue(absl::string_view value) {
  constexpr absl::string_view kKind = "store format version";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  uint32_t format_version;
  if (!in.GetVarint32(&format_version)) return Corrupt(kKind, "truncated");
  RETURN_IF_ERROR(CheckDone(in, kKind));
  return format_version;
}

std::string EncodeCounter(const Counter& counter) {
  std::string v;
  v.reserve(10);
  PutU8(&v, kValueEncodingVersion);
  PutU8(&v, static_cast<uint8_t>(counter.op));
  PutFixed64BE(&v, static_cast<uint64_t>(counter.value));
  return v;
}

absl::StatusOr<Counter> DecodeCounter(absl::string_view value) {
  constexpr absl::string_view kKind = "counter";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  uint8_t op;
  uint64_t bits;
  if (!in.GetU8(&op) || !in.GetFixed64BE(&bits)) return Corrupt(kKind, "truncated");
  if (op != static_cast<uint8_t>(CounterOp::kAdd) && op != static_cast<uint8_t>(CounterOp::kMax)) {
    return Corrupt(kKind, absl::StrCat("unknown operation ", op));
  }
  RETURN_IF_ERROR(CheckDone(in, kKind));
  return Counter{static_cast<CounterOp>(op), static_cast<int64_t>(bits)};
}

absl::StatusOr<Counter> CombineCounters(const Counter& base, const Counter& operand) {
  if (base.op != operand.op) {
    return absl::InvalidArgumentError(absl::StrCat("counter operations differ: ",
                                                   static_cast<int>(base.op), " vs ",
                                                   static_cast<int>(operand.op)));
  }
  Counter out = base;
  if (base.op == CounterOp::kAdd) {
    // Wrapping add: counts never come near 2^63, and wrapping keeps the merge total.
    out.value = static_cast<int64_t>(static_cast<uint64_t>(base.value) +
                                     static_cast<uint64_t>(operand.value));
  } else {
    out.value = std::max(base.value, operand.value);
  }
  return out;
}

std::string EncodeVersionValue(uint64_t version) {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  PutVarint64(&v, version);
  return v;
}

absl::StatusOr<uint64_t> DecodeVersionValue(absl::string_view value) {
  constexpr absl::string_view kKind = "live version pointer";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  uint64_t version;
  if (!in.GetVarint64(&version)) return Corrupt(kKind, "truncated");
  RETURN_IF_ERROR(CheckDone(in, kKind));
  return version;
}

// ---- Log --------------------------------------------------------------------------------------

std::string LogKey(uint64_t sequence) {
  std::string key;
  key.reserve(8);
  PutFixed64BE(&key, sequence);
  return key;
}

absl::StatusOr<uint64_t> DecodeLogKey(absl::string_view key) {
  if (key.size() != 8) return Corrupt("log key", absl::StrCat("size ", key.size(), ", want 8"));
  return DecodeFixed64BE(key.data());
}

std::string EncodeLogValue(const LogRecord& r) {
  std::string v;
  v.reserve(24);
  PutU8(&v, kValueEncodingVersion);
  PutVarint32(&v, r.user);
  PutVarint32(&v, r.item);
  PutInteractionFields(&v, r.event, r.has_value, r.value, r.timestamp_ms);
  return v;
}

absl::StatusOr<LogRecord> DecodeLogValue(absl::string_view value) {
  constexpr absl::string_view kKind = "log record";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  LogRecord r;
  if (!in.GetVarint32(&r.user) || !in.GetVarint32(&r.item)) return Corrupt(kKind, "truncated");
  RETURN_IF_ERROR(
      GetInteractionFields(in, kKind, &r.event, &r.has_value, &r.value, &r.timestamp_ms));
  RETURN_IF_ERROR(CheckDone(in, kKind));
  if (r.user == kNoIndex || r.item == kNoIndex) return Corrupt(kKind, "reserved index");
  return r;
}

// ---- History ----------------------------------------------------------------------------------

std::string HistoryPrefix(UserIndex user) {
  std::string key;
  key.reserve(kHistoryKeySize);
  PutFixed32BE(&key, user);
  return key;
}

std::string HistoryKey(UserIndex user, uint64_t sequence) {
  std::string key = HistoryPrefix(user);
  PutFixed64BE(&key, sequence);
  return key;
}

absl::StatusOr<HistoryKeyParts> DecodeHistoryKey(absl::string_view key) {
  if (key.size() != kHistoryKeySize) {
    return Corrupt("history key", absl::StrCat("size ", key.size(), ", want ", kHistoryKeySize));
  }
  return HistoryKeyParts{DecodeFixed32BE(key.data()), DecodeFixed64BE(key.data() + 4)};
}

std::string EncodeHistoryValue(const HistoryEntry& e) {
  std::string v;
  v.reserve(20);
  PutU8(&v, kValueEncodingVersion);
  PutVarint32(&v, e.item);
  PutInteractionFields(&v, e.event, e.has_value, e.value, e.timestamp_ms);
  return v;
}

absl::StatusOr<HistoryEntry> DecodeHistoryValue(absl::string_view value, uint64_t sequence) {
  constexpr absl::string_view kKind = "history entry";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  HistoryEntry e;
  e.sequence = sequence;
  if (!in.GetVarint32(&e.item)) return Corrupt(kKind, "truncated");
  RETURN_IF_ERROR(
      GetInteractionFields(in, kKind, &e.event, &e.has_value, &e.value, &e.timestamp_ms));
  RETURN_IF_ERROR(CheckDone(in, kKind));
  if (e.item == kNoIndex) return Corrupt(kKind, "reserved index");
  return e;
}

// ---- Items ------------------------------------------------------------------------------------

std::string ItemKey(ItemIndex item) {
  std::string key;
  key.reserve(4);
  PutFixed32BE(&key, item);
  return key;
}

absl::StatusOr<ItemIndex> DecodeItemKey(absl::string_view key) {
  if (key.size() != 4) return Corrupt("item key", absl::StrCat("size ", key.size(), ", want 4"));
  return DecodeFixed32BE(key.data());
}

std::string EncodeItemValue(const ItemRecord& r) {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  PutLengthPrefixed(&v, r.id);
  PutU8(&v, (r.active ? kFlagActive : 0) | (r.deleted ? kFlagDeleted : 0));
  PutStringList(&v, r.categories);
  PutStringList(&v, r.tags);
  PutLengthPrefixed(&v, r.title);
  PutVarsint64(&v, r.updated_at_ms);
  return v;
}

absl::StatusOr<ItemRecord> DecodeItemValue(absl::string_view value, ItemIndex index) {
  constexpr absl::string_view kKind = "item record";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  ItemRecord r;
  r.index = index;
  absl::string_view id, title;
  uint8_t flags;
  if (!in.GetLengthPrefixed(&id) || !in.GetU8(&flags)) return Corrupt(kKind, "truncated");
  if ((flags & ~kKnownItemFlags) != 0) {
    return Corrupt(kKind, absl::StrCat("unknown flags 0x", absl::Hex(flags)));
  }
  if (!GetStringList(in, &r.categories)) return Corrupt(kKind, "bad categories");
  if (!GetStringList(in, &r.tags)) return Corrupt(kKind, "bad tags");
  if (!in.GetLengthPrefixed(&title) || !in.GetVarsint64(&r.updated_at_ms)) {
    return Corrupt(kKind, "truncated");
  }
  RETURN_IF_ERROR(CheckDone(in, kKind));
  r.id = std::string(id);
  r.title = std::string(title);
  r.active = (flags & kFlagActive) != 0;
  r.deleted = (flags & kFlagDeleted) != 0;
  return r;
}

// ---- Ids --------------------------------------------------------------------------------------

std::string UserIdKey(absl::string_view user_id) { return StringKey(IdKeyKind::kUserId, user_id); }
std::string UserIndexKey(UserIndex user) { return IndexKey(IdKeyKind::kUserIndex, user); }
std::string ItemIdKey(absl::string_view item_id) { return StringKey(IdKeyKind::kItemId, item_id); }
std::string ItemIndexKey(ItemIndex item) { return IndexKey(IdKeyKind::kItemIndex, item); }
std::string ErasedUserKey(UserIndex user) { return IndexKey(IdKeyKind::kErasedUser, user); }

absl::StatusOr<IdKeyParts> DecodeIdKey(absl::string_view key) {
  constexpr absl::string_view kKind = "id map key";
  if (key.empty()) return Corrupt(kKind, "empty");
  IdKeyParts parts;
  const auto kind = static_cast<uint8_t>(key[0]);
  switch (kind) {
    case static_cast<uint8_t>(IdKeyKind::kUserId):
    case static_cast<uint8_t>(IdKeyKind::kItemId):
      if (key.size() < 2) return Corrupt(kKind, "empty id");
      parts.kind = static_cast<IdKeyKind>(kind);
      parts.id = key.substr(1);
      return parts;
    case static_cast<uint8_t>(IdKeyKind::kUserIndex):
    case static_cast<uint8_t>(IdKeyKind::kItemIndex):
    case static_cast<uint8_t>(IdKeyKind::kErasedUser):
      if (key.size() != 5) return Corrupt(kKind, absl::StrCat("size ", key.size(), ", want 5"));
      parts.kind = static_cast<IdKeyKind>(kind);
      parts.index = DecodeFixed32BE(key.data() + 1);
      if (parts.index == kNoIndex) return Corrupt(kKind, "reserved index");
      return parts;
    default:
      return Corrupt(kKind, absl::StrCat("unknown prefix 0x", absl::Hex(kind)));
  }
}

std::string EncodeIndexValue(uint32_t index) {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  PutVarint32(&v, index);
  return v;
}

absl::StatusOr<uint32_t> DecodeIndexValue(absl::string_view value) {
  constexpr absl::string_view kKind = "id map entry";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  uint32_t index;
  if (!in.GetVarint32(&index)) return Corrupt(kKind, "truncated");
  RETURN_IF_ERROR(CheckDone(in, kKind));
  if (index == kNoIndex) return Corrupt(kKind, "reserved index");
  return index;
}

std::string EncodeIdValue(absl::string_view id) {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  PutLengthPrefixed(&v, id);
  return v;
}

absl::StatusOr<std::string> DecodeIdValue(absl::string_view value) {
  constexpr absl::string_view kKind = "reverse id map entry";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  absl::string_view id;
  if (!in.GetLengthPrefixed(&id)) return Corrupt(kKind, "truncated");
  RETURN_IF_ERROR(CheckDone(in, kKind));
  if (id.empty()) return Corrupt(kKind, "empty id");
  return std::string(id);
}

std::string EncodeErasedUserValue(bool rows_zeroed) {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  PutU8(&v, rows_zeroed ? 1 : 0);
  return v;
}

absl::StatusOr<bool> DecodeErasedUserValue(absl::string_view value) {
  constexpr absl::string_view kKind = "erased user record";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  uint8_t rows_zeroed;
  if (!in.GetU8(&rows_zeroed) || rows_zeroed > 1) return Corrupt(kKind, "bad state");
  RETURN_IF_ERROR(CheckDone(in, kKind));
  return rows_zeroed == 1;
}

// ---- Models -----------------------------------------------------------------------------------

absl::Status ValidateModelName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("model name is empty");
  if (name.size() > kMaxModelNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("model name is ", name.size(),
                                                   " bytes, limit ", kMaxModelNameBytes));
  }
  if (name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("model name contains a NUL byte");
  }
  return absl::OkStatus();
}

std::string ModelNamePrefix(absl::string_view name) {
  std::string key(name);
  key.push_back('\0');
  return key;
}

std::string ModelVersionPrefix(absl::string_view name, uint64_t version) {
  std::string key = ModelNamePrefix(name);
  PutFixed64BE(&key, version);
  return key;
}

std::string ModelManifestKey(absl::string_view name, uint64_t version) {
  std::string key = ModelVersionPrefix(name, version);
  PutU8(&key, static_cast<uint8_t>(ModelKeyPart::kManifest));
  return key;
}

std::string ModelChunkKey(absl::string_view name, uint64_t version, uint32_t matrix,
                          uint32_t chunk) {
  std::string key = ModelVersionPrefix(name, version);
  PutU8(&key, static_cast<uint8_t>(ModelKeyPart::kChunk));
  PutFixed32BE(&key, matrix);
  PutFixed32BE(&key, chunk);
  return key;
}

absl::StatusOr<ModelKeyParts> DecodeModelKey(absl::string_view key) {
  constexpr absl::string_view kKind = "model key";
  const size_t nul = key.find('\0');
  if (nul == absl::string_view::npos || nul == 0) return Corrupt(kKind, "no model name");
  ModelKeyParts parts;
  parts.name = key.substr(0, nul);
  Decoder in(key.substr(nul + 1));
  uint8_t part;
  if (!in.GetFixed64BE(&parts.version) || !in.GetU8(&part)) return Corrupt(kKind, "truncated");
  if (part == static_cast<uint8_t>(ModelKeyPart::kManifest)) {
    parts.part = ModelKeyPart::kManifest;
  } else if (part == static_cast<uint8_t>(ModelKeyPart::kChunk)) {
    parts.part = ModelKeyPart::kChunk;
    if (!in.GetFixed32BE(&parts.matrix) || !in.GetFixed32BE(&parts.chunk)) {
      return Corrupt(kKind, "truncated chunk key");
    }
  } else {
    return Corrupt(kKind, absl::StrCat("unknown part 0x", absl::Hex(part)));
  }
  RETURN_IF_ERROR(CheckDone(in, kKind));
  return parts;
}

uint32_t MatrixShape::num_chunks() const {
  if (rows == 0 || cols == 0) return 0;
  return static_cast<uint32_t>((rows + rows_per_chunk - 1) / rows_per_chunk);
}

uint32_t RowsPerChunk(uint64_t cols) {
  constexpr uint64_t kMaxRows = 4096;
  constexpr uint64_t kTargetBytes = uint64_t{1} << 20;
  if (cols == 0) return kMaxRows;
  return static_cast<uint32_t>(std::clamp<uint64_t>(kTargetBytes / (4 * cols), 1, kMaxRows));
}

std::string EncodeManifest(const ModelManifest& m) {
  std::string v;
  PutU8(&v, kValueEncodingVersion);
  const ModelMetadata& meta = m.meta;
  PutLengthPrefixed(&v, meta.name);
  PutLengthPrefixed(&v, meta.algorithm);
  PutVarint64(&v, meta.version);
  PutVarsint64(&v, meta.trained_at_ms);
  PutDouble(&v, meta.train_seconds);
  PutVarint64(&v, meta.num_interactions);
  PutVarint64(&v, meta.trained_through_sequence);
  PutVarint32(&v, meta.num_users);
  PutVarint32(&v, meta.num_items);
  PutVarint32(&v, static_cast<uint32_t>(meta.metrics.size()));
  for (const auto& [key, value] : meta.metrics) {
    PutLengthPrefixed(&v, key);
    PutDouble(&v, value);
  }
  PutVarint32(&v, static_cast<uint32_t>(meta.params.size()));
  for (const auto& [key, value] : meta.params) {
    PutLengthPrefixed(&v, key);
    PutLengthPrefixed(&v, value);
  }
  PutU8(&v, meta.rejected ? 1 : 0);
  PutLengthPrefixed(&v, meta.reject_reason);
  PutShape(&v, m.user_factors);
  PutShape(&v, m.item_factors);
  PutVarint32(&v, static_cast<uint32_t>(m.tensor_names.size()));
  for (size_t i = 0; i < m.tensor_names.size(); ++i) {
    PutLengthPrefixed(&v, m.tensor_names[i]);
    PutShape(&v, m.tensors[i]);
  }
  return v;
}

absl::StatusOr<ModelManifest> DecodeManifest(absl::string_view value) {
  constexpr absl::string_view kKind = "model manifest";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  ModelManifest m;
  ModelMetadata& meta = m.meta;
  absl::string_view name, algorithm;
  if (!in.GetLengthPrefixed(&name) || !in.GetLengthPrefixed(&algorithm) ||
      !in.GetVarint64(&meta.version) || !in.GetVarsint64(&meta.trained_at_ms) ||
      !in.GetDouble(&meta.train_seconds) || !in.GetVarint64(&meta.num_interactions) ||
      !in.GetVarint64(&meta.trained_through_sequence) || !in.GetVarint32(&meta.num_users) ||
      !in.GetVarint32(&meta.num_items)) {
    return Corrupt(kKind, "truncated metadata");
  }
  meta.name = std::string(name);
  meta.algorithm = std::string(algorithm);
  uint32_t n;
  if (!in.GetVarint32(&n)) return Corrupt(kKind, "truncated metrics");
  for (uint32_t i = 0; i < n; ++i) {
    absl::string_view key;
    double value;
    if (!in.GetLengthPrefixed(&key) || !in.GetDouble(&value)) {
      return Corrupt(kKind, "truncated metrics");
    }
    if (!meta.metrics.emplace(std::string(key), value).second) {
      return Corrupt(kKind, "duplicate metric");
    }
  }
  if (!in.GetVarint32(&n)) return Corrupt(kKind, "truncated params");
  for (uint32_t i = 0; i < n; ++i) {
    absl::string_view key, value;
    if (!in.GetLengthPrefixed(&key) || !in.GetLengthPrefixed(&value)) {
      return Corrupt(kKind, "truncated params");
    }
    if (!meta.params.emplace(std::string(key), std::string(value)).second) {
      return Corrupt(kKind, "duplicate param");
    }
  }
  uint8_t rejected;
  absl::string_view reason;
  if (!in.GetU8(&rejected) || rejected > 1 || !in.GetLengthPrefixed(&reason)) {
    return Corrupt(kKind, "bad rejection state");
  }
  meta.rejected = rejected == 1;
  meta.reject_reason = std::string(reason);
  RETURN_IF_ERROR(GetShape(in, "user_factors", &m.user_factors));
  RETURN_IF_ERROR(GetShape(in, "item_factors", &m.item_factors));
  if (!in.GetVarint32(&n)) return Corrupt(kKind, "truncated tensor list");
  for (uint32_t i = 0; i < n; ++i) {
    absl::string_view tensor_name;
    if (!in.GetLengthPrefixed(&tensor_name)) return Corrupt(kKind, "truncated tensor list");
    if (!m.tensor_names.empty() && tensor_name <= m.tensor_names.back()) {
      return Corrupt(kKind, "tensor names out of order");
    }
    m.tensor_names.emplace_back(tensor_name);
    MatrixShape shape;
    RETURN_IF_ERROR(GetShape(in, absl::StrCat("tensor ", tensor_name), &shape));
    m.tensors.push_back(shape);
  }
  RETURN_IF_ERROR(CheckDone(in, kKind));
  return m;
}

void ChunkView::CopyTo(float* out) const {
  const size_t n = static_cast<size_t>(rows) * cols;
  // An empty chunk may come with null pointers (an empty vector's data()), and memcpy's
  // arguments must not be null even for zero bytes (found by fuzz/encoding_fuzzer under UBSan).
  if (n == 0) return;
  if constexpr (std::endian::native == std::endian::little) {
    // The stored layout is little-endian IEEE floats, i.e. exactly the host's.
    std::memcpy(out, data.data(), n * sizeof(float));
  } else {
    Decoder in(data);
    for (size_t i = 0; i < n; ++i) in.GetFloat(&out[i]);
  }
}

std::string EncodeChunk(uint64_t first_row, uint32_t rows, uint32_t cols, const float* values) {
  const size_t n = static_cast<size_t>(rows) * cols;
  std::string v;
  v.reserve(24 + 4 * n);
  PutU8(&v, kValueEncodingVersion);
  PutVarint64(&v, first_row);
  PutVarint32(&v, rows);
  PutVarint32(&v, cols);
  if constexpr (std::endian::native == std::endian::little) {
    v.append(reinterpret_cast<const char*>(values), n * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) PutFloat(&v, values[i]);
  }
  return v;
}

absl::StatusOr<ChunkView> DecodeChunk(absl::string_view value) {
  constexpr absl::string_view kKind = "model chunk";
  Decoder in(value);
  RETURN_IF_ERROR(CheckVersion(in, kKind));
  ChunkView c;
  if (!in.GetVarint64(&c.first_row) || !in.GetVarint32(&c.rows) || !in.GetVarint32(&c.cols)) {
    return Corrupt(kKind, "truncated header");
  }
  // 64-bit product of two 32-bit numbers cannot overflow.
  const uint64_t bytes = uint64_t{c.rows} * c.cols * 4;
  if (bytes != in.remaining()) {
    return Corrupt(kKind, absl::StrCat(c.rows, " x ", c.cols, " floats need ", bytes,
                                       " bytes, have ", in.remaining()));
  }
  c.data = in.rest();
  return c;
}

}  // namespace recd::storage
