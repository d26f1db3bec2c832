// On-disk encodings of the recd store: keys and values of every column family.
//
// Private to storage/ (store.h never includes it); tests and future fuzzers use it directly.
//
// Rules, in the spirit of LevelDB's util/coding.h:
//  * Integers in keys are fixed-width big-endian, so that the byte order of keys is the numeric
//    order and prefix scans return entries in sequence order.
//  * Every value starts with one encoding-version byte (kValueEncodingVersion). A decoder that
//    meets an unknown version fails with DataLoss instead of guessing.
//  * Inside values: varints (LEB128) for counts and indices, zigzag varints for signed numbers,
//    length-prefixed strings, and floats/doubles as their IEEE-754 bit pattern in a fixed-width
//    little-endian field (so NaN payloads and signed zeros round-trip bit-exactly).
//  * Decoders accept arbitrary bytes: they never read past the input, never allocate in
//    proportion to a length field they have not yet verified against the input size, and
//    return DataLoss naming the record kind on truncated, trailing or malformed data.
//
// Nothing here touches RocksDB; the functions are pure and thread-compatible.
#ifndef RECD_STORAGE_ENCODING_H_
#define RECD_STORAGE_ENCODING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model.h"
#include "core/types.h"
#include "storage/store.h"

namespace recd::storage {

// First byte of every value written by this build.
inline constexpr uint8_t kValueEncodingVersion = 1;
// Version of the store layout as a whole (column families, key shapes). Stored once under
// kMetaFormatVersionKey; Open refuses stores with a higher number.
inline constexpr uint32_t kStoreFormatVersion = 1;

// ---- Primitives ------------------------------------------------------------------------------

void PutU8(std::string* dst, uint8_t v);
void PutFixed32BE(std::string* dst, uint32_t v);
void PutFixed64BE(std::string* dst, uint64_t v);
void PutFixed32LE(std::string* dst, uint32_t v);
void PutFixed64LE(std::string* dst, uint64_t v);
void PutFloat(std::string* dst, float v);    // IEEE bits, fixed 4 bytes little-endian
void PutDouble(std::string* dst, double v);  // IEEE bits, fixed 8 bytes little-endian
void PutVarint32(std::string* dst, uint32_t v);
void PutVarint64(std::string* dst, uint64_t v);
void PutVarsint64(std::string* dst, int64_t v);  // zigzag, then varint
void PutLengthPrefixed(std::string* dst, absl::string_view s);

// `p` must point at 4 (8) readable bytes.
uint32_t DecodeFixed32BE(const char* p);
uint64_t DecodeFixed64BE(const char* p);

// Reads primitives from the front of a byte string. Each Get returns false (and leaves the
// output unspecified) when the input is too short or malformed; it never reads past the end.
class Decoder {
 public:
  explicit Decoder(absl::string_view in) : in_(in) {}

  bool GetU8(uint8_t* v);
  bool GetFixed32BE(uint32_t* v);
  bool GetFixed64BE(uint64_t* v);
  bool GetFixed32LE(uint32_t* v);
  bool GetFixed64LE(uint64_t* v);
  bool GetFloat(float* v);
  bool GetDouble(double* v);
  bool GetVarint32(uint32_t* v);  // rejects encodings longer than 5 bytes or above 2^32-1
  bool GetVarint64(uint64_t* v);  // rejects encodings longer than 10 bytes or above 2^64-1
  bool GetVarsint64(int64_t* v);
  bool GetLengthPrefixed(absl::string_view* v);  // a view into the input
  bool GetBytes(size_t n, absl::string_view* v);

  size_t remaining() const { return in_.size(); }
  bool done() const { return in_.empty(); }
  absl::string_view rest() const { return in_; }

 private:
  absl::string_view in_;
};

// ---- Column family names -----------------------------------------------------------------------

inline constexpr char kMetaColumnFamily[] = "default";
inline constexpr char kLogColumnFamily[] = "log";
inline constexpr char kHistoryColumnFamily[] = "history";
inline constexpr char kItemsColumnFamily[] = "items";
inline constexpr char kIdsColumnFamily[] = "ids";
inline constexpr char kModelsColumnFamily[] = "models";

// ---- Meta column family (default) -------------------------------------------------------------

// Written once when the store is created; its presence is what makes a RocksDB a recd store.
inline constexpr char kMetaMarkerKey[] = "recd.marker";
inline constexpr char kMetaFormatVersionKey[] = "recd.format_version";
// Present while deletions await PurgeDeleted (a restart before the purge schedules it again).
inline constexpr char kMetaPurgePendingKey[] = "recd.purge_pending";
// Counters, updated with the counter merge operator (see Counter below).
inline constexpr char kMetaLastSequenceKey[] = "counter.last_sequence";        // max
inline constexpr char kMetaUserCapacityKey[] = "counter.user_capacity";        // max
inline constexpr char kMetaItemCapacityKey[] = "counter.item_capacity";        // max
inline constexpr char kMetaNumInteractionsKey[] = "counter.num_interactions";  // add
// Per model name: highest version number ever assigned (max counter) and the live version.
std::string ModelLastVersionKey(absl::string_view model_name);
std::string ModelLiveVersionKey(absl::string_view model_name);

std::string EncodeMarkerValue();
absl::Status DecodeMarkerValue(absl::string_view value);  // DataLoss unless our marker
std::string EncodeFormatVersionValue(uint32_t format_version);
absl::StatusOr<uint32_t> DecodeFormatVersionValue(absl::string_view value);

// A persisted counter. Every update is a merge operand carrying its operation, so concurrent
// batches can update the same counter without a read-modify-write: "max" operands commute, and
// so do "add" operands. The merged value has the same encoding as an operand.
enum class CounterOp : uint8_t { kAdd = 1, kMax = 2 };
struct Counter {
  CounterOp op = CounterOp::kAdd;
  int64_t value = 0;
};
std::string EncodeCounter(const Counter& counter);
absl::StatusOr<Counter> DecodeCounter(absl::string_view value);
// Applies `operand` to `base`. InvalidArgument when the operations differ.
absl::StatusOr<Counter> CombineCounters(const Counter& base, const Counter& operand);

std::string EncodeVersionValue(uint64_t version);  // live-version pointer
absl::StatusOr<uint64_t> DecodeVersionValue(absl::string_view value);

// ---- Log column family: key = sequence (BE64) ---------------------------------------------------

struct LogRecord {
  UserIndex user = kNoIndex;
  ItemIndex item = kNoIndex;
  EventType event = EventType::kView;
  bool has_value = false;
  float value = 0.0f;
  int64_t timestamp_ms = 0;
};

std::string LogKey(uint64_t sequence);
absl::StatusOr<uint64_t> DecodeLogKey(absl::string_view key);
std::string EncodeLogValue(const LogRecord& record);
absl::StatusOr<LogRecord> DecodeLogValue(absl::string_view value);

// ---- History column family: key = user (BE32) + sequence (BE64) -------------------------------

inline constexpr size_t kHistoryPrefixSize = 4;
inline constexpr size_t kHistoryKeySize = 12;

std::string HistoryPrefix(UserIndex user);
std::string HistoryKey(UserIndex user, uint64_t sequence);
struct HistoryKeyParts {
  UserIndex user = kNoIndex;
  uint64_t sequence = 0;
};
absl::StatusOr<HistoryKeyParts> DecodeHistoryKey(absl::string_view key);
// The value holds everything of `entry` but its sequence (which is in the key).
std::string EncodeHistoryValue(const HistoryEntry& entry);
absl::StatusOr<HistoryEntry> DecodeHistoryValue(absl::string_view value, uint64_t sequence);

// ---- Items column family: key = item index (BE32) ---------------------------------------------

std::string ItemKey(ItemIndex item);
absl::StatusOr<ItemIndex> DecodeItemKey(absl::string_view key);
// record.index is not stored (it is the key).
std::string EncodeItemValue(const ItemRecord& record);
absl::StatusOr<ItemRecord> DecodeItemValue(absl::string_view value, ItemIndex index);

// ---- Ids column family --------------------------------------------------------------------------
//
// One-byte prefixes keep the four maps apart:
//   'u' + user id          -> user index      'U' + BE32 user index -> user id
//   'i' + item id          -> item index      'I' + BE32 item index -> item id
//   'E' + BE32 user index  -> erased-user record (DeleteUser; indices are never reused)

enum class IdKeyKind : uint8_t {
  kUserId = 'u',
  kUserIndex = 'U',
  kItemId = 'i',
  kItemIndex = 'I',
  kErasedUser = 'E',
};
std::string UserIdKey(absl::string_view user_id);
std::string UserIndexKey(UserIndex user);
std::string ItemIdKey(absl::string_view item_id);
std::string ItemIndexKey(ItemIndex item);
std::string ErasedUserKey(UserIndex user);

struct IdKeyParts {
  IdKeyKind kind = IdKeyKind::kUserId;
  absl::string_view id;      // kUserId, kItemId (a view into the key)
  uint32_t index = kNoIndex;  // kUserIndex, kItemIndex, kErasedUser
};
absl::StatusOr<IdKeyParts> DecodeIdKey(absl::string_view key);

std::string EncodeIndexValue(uint32_t index);  // value of 'u' and 'i' keys
absl::StatusOr<uint32_t> DecodeIndexValue(absl::string_view value);
std::string EncodeIdValue(absl::string_view id);  // value of 'U' and 'I' keys
absl::StatusOr<std::string> DecodeIdValue(absl::string_view value);
// Value of 'E' keys: whether the user's model rows are known to be zeroed in every version.
std::string EncodeErasedUserValue(bool rows_zeroed);
absl::StatusOr<bool> DecodeErasedUserValue(absl::string_view value);

// ---- Models column family -----------------------------------------------------------------------
//
// key = model name + '\0' + version (BE64) + part, where part is
//   0x00                                   the manifest (metadata and shapes), written LAST
//   0x01 + matrix (BE32) + chunk (BE32)    rows of one matrix
// Matrix 0 is user_factors, 1 is item_factors, 2 + k is the k-th tensor in name order.
// The manifest sorts first among a version's keys, so one Seek tells whether a version is
// complete. Model names are non-empty and contain no '\0'.

inline constexpr uint32_t kUserFactorsMatrix = 0;
inline constexpr uint32_t kItemFactorsMatrix = 1;
inline constexpr uint32_t kFirstTensorMatrix = 2;
inline constexpr size_t kMaxModelNameBytes = 256;

absl::Status ValidateModelName(absl::string_view name);  // InvalidArgument naming the limit
std::string ModelNamePrefix(absl::string_view name);     // name + '\0'
std::string ModelVersionPrefix(absl::string_view name, uint64_t version);
std::string ModelManifestKey(absl::string_view name, uint64_t version);
std::string ModelChunkKey(absl::string_view name, uint64_t version, uint32_t matrix,
                          uint32_t chunk);

enum class ModelKeyPart : uint8_t { kManifest = 0, kChunk = 1 };
struct ModelKeyParts {
  absl::string_view name;  // a view into the key
  uint64_t version = 0;
  ModelKeyPart part = ModelKeyPart::kManifest;
  uint32_t matrix = 0;  // kChunk only
  uint32_t chunk = 0;   // kChunk only
};
absl::StatusOr<ModelKeyParts> DecodeModelKey(absl::string_view key);

// Shape of one stored matrix. Rows [c * rows_per_chunk, min(rows, (c + 1) * rows_per_chunk))
// are chunk c; a matrix with no values (rows or cols zero) has no chunks.
struct MatrixShape {
  uint64_t rows = 0;
  uint64_t cols = 0;
  uint32_t rows_per_chunk = 1;

  uint32_t num_chunks() const;
};
// Upper bounds a manifest must respect (Eigen indexes with int64, loaders allocate rows * cols).
inline constexpr uint64_t kMaxMatrixRows = (uint64_t{1} << 31) - 1;
inline constexpr uint64_t kMaxMatrixCols = uint64_t{1} << 20;
inline constexpr uint64_t kMaxMatrixValues = uint64_t{1} << 36;

// Rows per chunk for a matrix with `cols` columns: at most 4096 rows and about 1 MiB.
uint32_t RowsPerChunk(uint64_t cols);

struct ModelManifest {
  ModelMetadata meta;
  MatrixShape user_factors;
  MatrixShape item_factors;
  std::vector<std::string> tensor_names;  // sorted, as in ModelData::tensors
  std::vector<MatrixShape> tensors;       // parallel to tensor_names
};
std::string EncodeManifest(const ModelManifest& manifest);
absl::StatusOr<ModelManifest> DecodeManifest(absl::string_view value);

// A chunk: rows [first_row, first_row + rows) of a matrix with `cols` columns, row-major.
struct ChunkView {
  uint64_t first_row = 0;
  uint32_t rows = 0;
  uint32_t cols = 0;
  absl::string_view data;  // rows * cols floats, 4 bytes little-endian each

  // Copies the floats to `out` (rows * cols of them), bit-exactly.
  void CopyTo(float* out) const;
};
// `values` points at rows * cols floats.
std::string EncodeChunk(uint64_t first_row, uint32_t rows, uint32_t cols, const float* values);
absl::StatusOr<ChunkView> DecodeChunk(absl::string_view value);

}  // namespace recd::storage

#endif  // RECD_STORAGE_ENCODING_H_
