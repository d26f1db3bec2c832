// The RocksDB implementation of Store.
//
// Layout (keys and values are defined in encoding.h):
//   default  metadata: store marker, format version, counters (merge operator), model version
//            counters and live-version pointers
//   log      sequence -> interaction; the training input, scanned in key order
//   history  user + sequence -> interaction; per-user prefix scans for serving
//   items    item index -> ItemRecord (only items that were upserted or deleted have a record;
//            items created by AppendInteractions are implicit "active, no attributes" records)
//   ids      user/item id <-> index maps, erased-user records
//   models   name + version + part -> manifest or chunk of rows
//
// Locks, in acquisition order (a lock is only taken while holding locks listed above it):
//   append_gate_  shared by AppendInteractions, exclusive for DeleteUser's first step
//   items_mu_     serialises item-record writers (UpsertItems, DeleteItem)
//   models_mu_    serialises model writers (SaveModel, row zeroing, MarkRejected, ...)
//   mu_           in-memory state only; never held across RocksDB I/O. Lookups take it shared:
//                 request handlers call them several times per request while the trainer (at
//                 nice +10) calls UserId for every user of a run; were they exclusive, a handler
//                 could wait for a trainer preempted inside the lock, and on one busy CPU the
//                 nice-0 waiters starved the holder for hundreds of milliseconds.
//   history_cache_'s shard mutexes: leaves, taken without mu_ and never across RocksDB I/O.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/sync.h"
#include "core/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "storage/encoding.h"
#include "storage/history_cache.h"
#include "storage/store.h"

namespace recd::storage {
namespace {

namespace fs = std::filesystem;

// Model chunks are grouped into write batches of about this size: large enough to amortise the
// fsync, small enough not to build a second copy of a big model in memory.
constexpr size_t kModelBatchBytes = size_t{4} << 20;

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// ---- RocksDB status -> absl::Status -----------------------------------------------------------

bool IsLockError(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  // Another process: "While lock file: <path>/LOCK: Resource temporarily unavailable".
  // This process: "lock hold by current process, acquire time ...".
  return absl::StrContains(text, "While lock file") ||
         absl::StrContains(text, "lock hold by current process");
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(context, ": ", s.ToString());
  switch (s.code()) {
    case rocksdb::Status::kNotFound: return absl::NotFoundError(message);
    case rocksdb::Status::kCorruption: return absl::DataLossError(message);
    case rocksdb::Status::kNotSupported: return absl::UnimplementedError(message);
    case rocksdb::Status::kInvalidArgument: return absl::InvalidArgumentError(message);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kShutdownInProgress: return absl::UnavailableError(message);
    case rocksdb::Status::kAborted: return absl::AbortedError(message);
    case rocksdb::Status::kIOError: {
      if (s.IsNoSpace() || absl::StrContains(message, "No space left")) {
        return absl::ResourceExhaustedError(message);
      }
      if (absl::StrContains(message, "Permission denied") ||
          absl::StrContains(message, "Read-only file system")) {
        return absl::PermissionDeniedError(message);
      }
      return absl::InternalError(message);
    }
    default: return absl::InternalError(message);
  }
}

// ---- Counter merge operator --------------------------------------------------------------------

// Applies "add" and "max" operands (encoding.h: Counter). Both are associative and commutative,
// so concurrent batches can each carry their own increment or high-water mark without reading
// the current value, and the result does not depend on commit order.
class CounterMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* logger) const override {
    absl::StatusOr<Counter> operand = DecodeCounter(ToView(value));
    if (!operand.ok()) return false;
    if (existing_value == nullptr) {
      *new_value = EncodeCounter(*operand);
      return true;
    }
    absl::StatusOr<Counter> base = DecodeCounter(ToView(*existing_value));
    if (!base.ok()) return false;
    absl::StatusOr<Counter> merged = CombineCounters(*base, *operand);
    if (!merged.ok()) return false;
    *new_value = EncodeCounter(*merged);
    return true;
  }
  const char* Name() const override { return "recd.CounterMergeOperator"; }
};

// ---- Options -------------------------------------------------------------------------------------

rocksdb::CompressionType BestCompression(std::initializer_list<rocksdb::CompressionType> wanted) {
  const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  for (rocksdb::CompressionType type : wanted) {
    if (std::find(supported.begin(), supported.end(), type) != supported.end()) return type;
  }
  return rocksdb::kNoCompression;
}

// Tuning, kept deliberately small:
//  * one LRU block cache shared by every column family, sized by StoreOptions;
//  * index and filter blocks live in that cache (bounded memory) and are pinned for L0;
//  * bloom filters (10 bits/key) on column families read by point lookups (meta, items, ids,
//    models); the history family filters on its 4-byte user prefix instead, because it is only
//    ever scanned by user; the log family has no filter because it is only scanned in order;
//  * level compaction with dynamic level sizes; LZ4 above the bottom level, ZSTD at the bottom
//    (falling back to what this librocksdb was built with); no compression for model chunks,
//    which are float noise to a compressor.
struct CfTuning {
  bool bloom = true;
  size_t history_prefix = 0;  // > 0: fixed-prefix extractor and prefix bloom
  bool compress = true;
  bool merge = false;
  size_t write_buffer_bytes = size_t{16} << 20;
};

rocksdb::ColumnFamilyOptions MakeCfOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                           const CfTuning& tuning) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  if (tuning.bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  if (tuning.history_prefix > 0) {
    cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(tuning.history_prefix));
    cf.memtable_prefix_bloom_size_ratio = 0.05;
    table.whole_key_filtering = false;  // never looked up by whole key
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compaction_style = rocksdb::kCompactionStyleLevel;
  cf.level_compaction_dynamic_level_bytes = true;
  cf.write_buffer_size = tuning.write_buffer_bytes;
  if (tuning.compress) {
    cf.compression = BestCompression({rocksdb::kLZ4Compression, rocksdb::kSnappyCompression});
    cf.bottommost_compression = BestCompression(
        {rocksdb::kZSTD, rocksdb::kLZ4Compression, rocksdb::kSnappyCompression});
  } else {
    cf.compression = rocksdb::kNoCompression;
    cf.bottommost_compression = rocksdb::kNoCompression;
  }
  if (tuning.merge) cf.merge_operator = std::make_shared<CounterMergeOperator>();
  return cf;
}

rocksdb::DBOptions MakeDbOptions(const std::shared_ptr<rocksdb::Statistics>& statistics) {
  rocksdb::DBOptions db;
  db.max_background_jobs = 2;  // flush + compaction; the host has 2 cores
  db.bytes_per_sync = 1 << 20;
  // Small column families (meta, ids) flush rarely; cap the WAL so that they are flushed and
  // old logs recycled instead of replaying gigabytes at Open.
  db.max_total_wal_size = size_t{256} << 20;
  db.keep_log_file_num = 4;
  db.statistics = statistics;
  // Every acknowledged write was fsynced, so after a crash only the log's last, torn record can be
  // incomplete, and it was never acknowledged: tolerate exactly that. Any other corruption fails
  // Open (RocksDB's default, point-in-time recovery, would silently stop replaying at the first
  // damaged record and drop every acknowledged write after it).
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  return db;
}

const std::vector<std::string>& OurColumnFamilies() {
  static const auto* names = new std::vector<std::string>{
      kMetaColumnFamily, kLogColumnFamily, kHistoryColumnFamily,
      kItemsColumnFamily, kIdsColumnFamily, kModelsColumnFamily};
  return *names;
}

CfTuning TuningFor(const std::string& name) {
  CfTuning t;
  if (name == kMetaColumnFamily) {
    t.merge = true;
    t.write_buffer_bytes = size_t{4} << 20;
  } else if (name == kLogColumnFamily) {
    t.bloom = false;
    t.write_buffer_bytes = size_t{32} << 20;
  } else if (name == kHistoryColumnFamily) {
    t.history_prefix = kHistoryPrefixSize;
    t.write_buffer_bytes = size_t{32} << 20;
  } else if (name == kModelsColumnFamily) {
    t.compress = false;
    t.write_buffer_bytes = size_t{32} << 20;
  }
  return t;
}

// ---- Id spaces ---------------------------------------------------------------------------------

// One id <-> index map (users or items). See RocksStore's comment on id allocation.
struct IdSpace {
  struct Pending {
    uint32_t index = kNoIndex;
    int refs = 0;  // in-flight writes carrying this mapping
  };
  absl::flat_hash_map<std::string, uint32_t> forward;  // published (durable) mappings only
  std::vector<std::string> reverse;                    // by index; "" = hole or unpublished
  absl::flat_hash_map<std::string, Pending> pending;   // reserved, write in flight
  uint32_t capacity = 0;                               // 1 + highest index ever reserved

  // The external id of `index`; empty for a hole or an index out of range.
  std::string IdOf(uint32_t index) const {
    return index < reverse.size() ? reverse[index] : std::string();
  }
};

// A mapping a write carries: either a fresh reservation or a share of another write's.
struct Claim {
  std::string id;
  uint32_t index = kNoIndex;
  bool created = false;  // this write made the reservation
};

// Resolves `id` in `space`, reserving an index when it is unknown. Each id is claimed once per
// write (`seen` dedupes within the batch).
uint32_t ResolveLocked(IdSpace& space, absl::string_view id,
                       absl::flat_hash_map<std::string, uint32_t>& seen,
                       std::vector<Claim>& claims) {
  if (auto it = seen.find(id); it != seen.end()) return it->second;
  uint32_t index;
  if (auto it = space.forward.find(id); it != space.forward.end()) {
    index = it->second;
  } else if (auto pit = space.pending.find(id); pit != space.pending.end()) {
    ++pit->second.refs;
    index = pit->second.index;
    claims.push_back(Claim{std::string(id), index, false});
  } else {
    index = space.capacity++;
    space.reverse.emplace_back();
    space.pending.emplace(std::string(id), IdSpace::Pending{index, 1});
    claims.push_back(Claim{std::string(id), index, true});
  }
  seen.emplace(std::string(id), index);
  return index;
}

// Ends the claims of one write: on success publishes each mapping (if no other write already
// did), then releases the reservation. A reservation whose every write failed becomes a
// permanent hole.
void FinishClaimsLocked(IdSpace& space, const std::vector<Claim>& claims, bool written) {
  for (const Claim& claim : claims) {
    if (written && !space.forward.contains(claim.id)) {
      space.forward.emplace(claim.id, claim.index);
      space.reverse[claim.index] = claim.id;
    }
    auto it = space.pending.find(claim.id);
    if (it != space.pending.end() && --it->second.refs == 0) space.pending.erase(it);
  }
}

void PutClaims(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* cf,
               const std::vector<Claim>& claims, bool users) {
  for (const Claim& claim : claims) {
    batch.Put(cf, users ? UserIdKey(claim.id) : ItemIdKey(claim.id), EncodeIndexValue(claim.index));
    batch.Put(cf, users ? UserIndexKey(claim.index) : ItemIndexKey(claim.index),
              EncodeIdValue(claim.id));
  }
}

uint32_t ClaimedCapacity(const std::vector<Claim>& claims) {
  uint32_t capacity = 0;
  for (const Claim& c : claims) capacity = std::max(capacity, c.index + 1);
  return capacity;
}

std::string CounterOperand(CounterOp op, int64_t value) { return EncodeCounter({op, value}); }

absl::Status ValidateId(absl::string_view id, absl::string_view what, size_t position) {
  if (id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " of entry ", position, " is empty"));
  }
  return absl::OkStatus();
}

absl::Status ValidateMatrix(const EmbeddingMatrix& m, absl::string_view what) {
  const uint64_t rows = static_cast<uint64_t>(m.rows());
  const uint64_t cols = static_cast<uint64_t>(m.cols());
  if (rows > kMaxMatrixRows || cols > kMaxMatrixCols || rows * cols > kMaxMatrixValues) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", rows, " x ", cols,
                                                   ", limits: ", kMaxMatrixRows, " rows, ",
                                                   kMaxMatrixCols, " columns, ",
                                                   kMaxMatrixValues, " values"));
  }
  return absl::OkStatus();
}

MatrixShape ShapeOf(const EmbeddingMatrix& m) {
  MatrixShape s;
  s.rows = static_cast<uint64_t>(m.rows());
  s.cols = static_cast<uint64_t>(m.cols());
  s.rows_per_chunk = RowsPerChunk(s.cols);
  return s;
}

// The first key after every key of `name`'s `version` (works for the last possible version).
std::string VersionRangeEnd(absl::string_view name, uint64_t version) {
  if (version == std::numeric_limits<uint64_t>::max()) {
    std::string end(name);
    end.push_back('\x01');
    return end;
  }
  return ModelVersionPrefix(name, version + 1);
}

std::string ModelLabel(absl::string_view name, uint64_t version) {
  return absl::StrCat("model '", name, "' version ", version);
}

// ---- The store ---------------------------------------------------------------------------------

// Id allocation (users and items alike).
//
// Invariants: an index is handed out at most once for the life of the store, and a mapping is
// visible to readers (FindUser, UserId, ...) only once it is durable.
//
// A write that meets an unknown id reserves the next index under mu_ and records it in
// `pending` (invisible to readers). The mapping is written in the SAME WriteBatch as the data
// that uses it, so the data never references an index without its mapping. After the write,
// FinishClaimsLocked publishes the mapping into `forward`/`reverse`.
//
// Two concurrent writes introducing the same new id: the second finds it in `pending`, takes a
// share of the reservation (refs++) and writes the identical mapping in its own batch (RocksDB
// puts are idempotent). Both therefore use the same index, each call's own batch makes the
// mapping durable before it returns, and whichever succeeds first publishes it. If every
// write carrying a reservation fails, the index becomes a hole; holes are harmless because
// indices are never reused. Capacities ("1 + highest index ever assigned") are persisted with a
// max-merge in each batch that reserves, so they never shrink across restarts.
//
// Sequences are reserved the same way (a counter under mu_, persisted by max-merge), and
// in_flight_ remembers the first sequence of each write still in progress so that
// ReadTrainingSnapshot can cut the log at a point below which nothing is still in flight.
class RocksStore final : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  ~RocksStore() override;

  std::optional<UserIndex> FindUser(absl::string_view user_id) const override;
  std::optional<ItemIndex> FindItem(absl::string_view item_id) const override;
  std::string UserId(UserIndex user) const override;
  std::string ItemId(ItemIndex item) const override;
  std::vector<std::string> ItemIds(absl::Span<const ItemIndex> items) const override;

  absl::StatusOr<AppendResult> AppendInteractions(
      absl::Span<const InteractionInput> batch) override;
  using Store::GetUserHistory;
  absl::Status GetUserHistory(UserIndex user, size_t max_entries,
                              std::vector<HistoryEntry>* out) const override;
  absl::StatusOr<TrainingSnapshot> ReadTrainingSnapshot() const override;

  absl::StatusOr<DeleteUserResult> DeleteUser(absl::string_view user_id) override;

  absl::StatusOr<UpsertResult> UpsertItems(absl::Span<const ItemRecord> items) override;
  absl::Status DeleteItem(absl::string_view item_id) override;
  absl::StatusOr<std::vector<ItemRecord>> ListItems() const override;
  absl::StatusOr<std::optional<ItemRecord>> GetItem(absl::string_view item_id) const override;

  absl::StatusOr<uint64_t> SaveModel(const ModelData& data) override;
  absl::StatusOr<ModelData> LoadModel(absl::string_view name, uint64_t version) const override;
  absl::StatusOr<std::vector<ModelMetadata>> ListModelVersions(
      absl::string_view name) const override;
  absl::StatusOr<std::vector<std::string>> ListModelNames() const override;
  absl::Status SetLiveVersion(absl::string_view name, uint64_t version) override;
  absl::StatusOr<std::optional<uint64_t>> GetLiveVersion(absl::string_view name) const override;
  absl::Status MarkRejected(absl::string_view name, uint64_t version,
                            absl::string_view reason) override;
  absl::Status DeleteModelVersion(absl::string_view name, uint64_t version) override;

  absl::Status CreateCheckpoint(const std::string& dir) override;
  absl::Status PurgeDeleted() override;
  absl::StatusOr<bool> PurgePending() const override;
  StoreStats GetStats() const override;

 private:
  RocksStore(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
             std::vector<rocksdb::ColumnFamilyHandle*> handles,
             std::shared_ptr<rocksdb::Statistics> statistics);

  // Open helpers.
  absl::Status InitializeNewStore();
  absl::Status CheckExistingStore(bool* adopt_empty);
  absl::Status LoadIdMaps();
  absl::Status LoadCounters();
  absl::Status LoadDeletedItems();
  absl::Status RemoveUnfinishedModelVersions();

  absl::Status Write(rocksdb::WriteBatch& batch, absl::string_view what);
  // GetUserHistory from RocksDB, bypassing the cache.
  absl::StatusOr<std::vector<HistoryEntry>> ReadHistory(UserIndex user, size_t max_entries) const;
  // Reads a key; nullopt when absent.
  absl::StatusOr<std::optional<std::string>> Get(rocksdb::ColumnFamilyHandle* cf,
                                                 absl::string_view key,
                                                 const rocksdb::Snapshot* snapshot,
                                                 absl::string_view what) const;
  absl::StatusOr<int64_t> ReadCounter(absl::string_view key) const;
  absl::StatusOr<std::optional<ModelManifest>> ReadManifest(
      absl::string_view name, uint64_t version, const rocksdb::Snapshot* snapshot) const;

  // Calls fn(name, version, manifest value or nullopt for an unfinished version) for every
  // version of `only_name` (every model when nullopt), in key order, with one Seek per version.
  absl::Status ForEachVersion(
      std::optional<absl::string_view> only_name, const rocksdb::Snapshot* snapshot,
      const std::function<absl::Status(absl::string_view name, uint64_t version,
                                       const std::optional<absl::string_view>& manifest)>& fn)
      const;

  // Zeroes the rows of `users` in every stored model version, then marks their erased-user
  // records done. Idempotent.
  absl::Status ZeroUserRowsLocked(std::vector<UserIndex> users)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(models_mu_);
  absl::Status FinishPendingErasures() ABSL_LOCKS_EXCLUDED(models_mu_, mu_);

  const StoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned; destroyed before db_
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* history_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* items_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* models_cf_ = nullptr;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  rocksdb::WriteOptions write_options_;
  // Newest history entries of recently read users; null when disabled. Every write to
  // history_cf_ tells it (see history_cache.cc for why its answers equal ReadHistory's).
  const std::unique_ptr<HistoryCache> history_cache_;

  // Appends hold it shared for their whole write; DeleteUser holds it exclusively while it
  // collects and erases a user's entries, so no append can slip an entry for that user in
  // between (and no reservation is pending while a user's mapping is removed).
  Mutex append_gate_ ABSL_ACQUIRED_BEFORE(items_mu_, models_mu_, mu_);
  Mutex items_mu_ ABSL_ACQUIRED_BEFORE(models_mu_, mu_);
  Mutex models_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable Mutex mu_;

  IdSpace users_ ABSL_GUARDED_BY(mu_);
  IdSpace items_ ABSL_GUARDED_BY(mu_);
  // Users erased by DeleteUser (their indices stay holes forever); SaveModel zeroes their rows.
  absl::flat_hash_set<UserIndex> erased_users_ ABSL_GUARDED_BY(mu_);
  // Erased users whose model rows may not be zeroed everywhere yet.
  absl::flat_hash_set<UserIndex> pending_erasures_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<ItemIndex> deleted_items_ ABSL_GUARDED_BY(mu_);
  uint64_t last_reserved_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_committed_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  absl::btree_set<uint64_t> in_flight_ ABSL_GUARDED_BY(mu_);  // first sequence of each write
  uint64_t num_interactions_ ABSL_GUARDED_BY(mu_) = 0;
};

RocksStore::RocksStore(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
                       std::vector<rocksdb::ColumnFamilyHandle*> handles,
                       std::shared_ptr<rocksdb::Statistics> statistics)
    : options_(std::move(options)),
      db_(std::move(db)),
      handles_(std::move(handles)),
      statistics_(std::move(statistics)),
      history_cache_(options_.history_cache_depth > 0 && options_.history_cache_entries > 0
                         ? std::make_unique<HistoryCache>(options_.history_cache_depth,
                                                          options_.history_cache_entries)
                         : nullptr) {
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    const std::string& name = h->GetName();
    if (name == kMetaColumnFamily) meta_cf_ = h;
    if (name == kLogColumnFamily) log_cf_ = h;
    if (name == kHistoryColumnFamily) history_cf_ = h;
    if (name == kItemsColumnFamily) items_cf_ = h;
    if (name == kIdsColumnFamily) ids_cf_ = h;
    if (name == kModelsColumnFamily) models_cf_ = h;
  }
  write_options_.sync = options_.sync_writes;
}

RocksStore::~RocksStore() {
  for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
  // Every acknowledged write is already in the WAL; a failed Close loses nothing acknowledged
  // and a destructor has nobody to report to.
  db_->Close().PermitUncheckedError();
}

// The data files the open database's MANIFEST references, and the .sst files in `path` it does
// not (orphans).
struct DataFileCensus {
  size_t live_files = 0;
  uint64_t live_bytes = 0;
  std::vector<fs::path> orphans;
  uint64_t orphan_bytes = 0;
};

DataFileCensus TakeDataFileCensus(rocksdb::DB& db, const std::string& path) {
  DataFileCensus census;
  std::vector<rocksdb::LiveFileMetaData> live;
  db.GetLiveFilesMetaData(&live);
  absl::flat_hash_set<std::string> referenced;
  for (const rocksdb::LiveFileMetaData& f : live) {
    referenced.insert(fs::path(f.name).filename().string());
    census.live_bytes += f.size;
  }
  census.live_files = live.size();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.path().extension() != ".sst" || referenced.contains(entry.path().filename().string())) continue;
    census.orphans.push_back(entry.path());
    census.orphan_bytes += entry.file_size(ec);
  }
  return census;
}

// A read-write Open deletes data files its MANIFEST does not reference. If the MANIFEST itself is
// damaged in a way RocksDB does not detect (seen: a garbled record header read as the end of the
// file), that would delete the whole store and present it as empty. So before the read-write
// Open, look with a read-only Open (which never deletes anything) and compare the data files on
// disk with the ones referenced:
//  - no recd marker but data files present: damaged, refuse;
//  - unreferenced files outweighing the referenced ones: the MANIFEST lost track of the data,
//    refuse;
//  - a few unreferenced files (a crash during a flush or compaction legitimately leaves its
//    outputs, or its inputs, behind): move them to an "orphaned-<time>" folder instead of letting
//    RocksDB delete them, and warn.
absl::Status CheckDataFilesBeforeOpen(const StoreOptions& options, const rocksdb::DBOptions& db_options,
                                      const std::vector<rocksdb::ColumnFamilyDescriptor>& descriptors) {
  const std::string& path = options.path;
  auto damaged = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("store at ", path, " is damaged: ", why,
                                            ". recd will not open it; restore it from a checkpoint or backup"));
  };
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &handles, &raw);
  if (s.IsCorruption()) return damaged(s.ToString());
  if (!s.ok()) return absl::OkStatus();  // e.g. an unfinished creation: the read-write Open decides
  std::unique_ptr<rocksdb::DB> db(raw);
  absl::Cleanup close = [&] {
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  };

  const DataFileCensus census = TakeDataFileCensus(*db, path);
  const std::vector<fs::path>& orphans = census.orphans;
  const uint64_t live_bytes = census.live_bytes, orphan_bytes = census.orphan_bytes;
  const size_t live_files = census.live_files;
  std::error_code ec;
  std::string marker;
  bool marker_found = false;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName() == kMetaColumnFamily) marker_found = db->Get(rocksdb::ReadOptions(), h, kMetaMarkerKey, &marker).ok();
  }
  if (!marker_found && (live_bytes > 0 || orphan_bytes > 0)) {
    return damaged(absl::StrCat("it holds ", live_files + orphans.size(), " data files but no recd marker"));
  }
  if (orphans.empty()) return absl::OkStatus();
  if (orphan_bytes > live_bytes) {
    return damaged(absl::StrCat(orphans.size(), " data files (", orphan_bytes, " bytes) are not referenced by the "
                                "MANIFEST, more than the ", live_bytes, " bytes it references"));
  }
  const fs::path aside = fs::path(path) / absl::StrCat("orphaned-", ::time(nullptr));
  fs::create_directories(aside, ec);
  for (const fs::path& f : orphans) {
    fs::rename(f, aside / f.filename(), ec);
    if (ec) return absl::InternalError(absl::StrCat("moving unreferenced data file ", f.string(), " aside: ", ec.message()));
  }
  if (options.warn) {
    options.warn(absl::StrCat(orphans.size(), " data files (", orphan_bytes, " bytes) not referenced by the store's "
                              "MANIFEST (left by a crash during a flush or compaction) were moved to ", aside.string(),
                              "; delete them once you are sure nothing is missing"));
  }
  return absl::OkStatus();
}


// Whether a RocksDB database that lacks some of recd's column families is damaged rather than
// foreign: another of recd's own families is listed, RocksDB itself finds the MANIFEST corrupt,
// the default family holds the recd marker, or data files on disk are not referenced by the
// MANIFEST. Looks with a read-only open, which
// changes nothing.
bool LooksLikeDamagedStore(const rocksdb::DBOptions& db_options, const std::string& path,
                   const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (name != kMetaColumnFamily &&
        std::find(OurColumnFamilies().begin(), OurColumnFamilies().end(), name) != OurColumnFamilies().end()) {
      return true;
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status st = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &handles, &raw);
  if (st.IsCorruption()) return true;
  if (!st.ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  bool found = false;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    std::string marker;
    if (h->GetName() == kMetaColumnFamily) found = db->Get(rocksdb::ReadOptions(), h, kMetaMarkerKey, &marker).ok();
    db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  if (found) return true;
  // Data files the MANIFEST does not reference: it lost track of them (and of the families
  // they belonged to), whoever wrote the database.
  return !TakeDataFileCensus(*db, path).orphans.empty();
}

// ---- Open --------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Store>> RocksStore::Open(const StoreOptions& options) {
  const std::string& path = options.path;
  if (path.empty()) return absl::InvalidArgumentError("StoreOptions.path is empty");
  auto not_a_store = [&](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("folder ", path, " is not a recd store: ", why));
  };

  // Classify the folder before RocksDB touches it, so that a foreign folder is never written.
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  bool fresh = false;
  if (ec && ec != std::errc::no_such_file_or_directory) {
    if (ec == std::errc::permission_denied) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot access store folder ", path, ": ", ec.message()));
    }
    return absl::InternalError(absl::StrCat("cannot stat store folder ", path, ": ", ec.message()));
  }
  if (!fs::exists(status)) {
    if (!options.create_if_missing) {
      return absl::NotFoundError(
          absl::StrCat("no recd store at ", path, " (create_if_missing is false)"));
    }
    fs::create_directories(path, ec);
    if (ec) {
      if (ec == std::errc::permission_denied || ec == std::errc::read_only_file_system) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot create store folder ", path, ": ", ec.message()));
      }
      return absl::InternalError(
          absl::StrCat("cannot create store folder ", path, ": ", ec.message()));
    }
    fresh = true;
  } else if (!fs::is_directory(status)) {
    return not_a_store("it is not a folder");
  } else {
    if (::access(path.c_str(), R_OK | W_OK | X_OK) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("store folder ", path, " is not writable: ", std::strerror(errno)));
    }
    const bool empty = fs::is_empty(path, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot list store folder ", path, ": ",
                                              ec.message()));
    }
    if (empty) {
      if (!options.create_if_missing) {
        return absl::NotFoundError(
            absl::StrCat("no recd store at ", path, " (empty folder, create_if_missing is false)"));
      }
      fresh = true;
    } else if (!fs::exists(fs::path(path) / "CURRENT", ec)) {
      // Without CURRENT RocksDB would treat the folder as new. If RocksDB's own files are there,
      // it is a damaged store, not a foreign folder: refuse it rather than start over.
      for (const auto& entry : fs::directory_iterator(path, ec)) {
        const std::string name = entry.path().filename().string();
        if (name == "IDENTITY" || name.rfind("MANIFEST-", 0) == 0 || absl::EndsWith(name, ".sst") ||
            absl::EndsWith(name, ".log")) {
          return absl::DataLossError(absl::StrCat(
              "store at ", path, " is damaged: its CURRENT file is missing but RocksDB files (", name,
              ", ...) are present. recd will not open or overwrite it; restore it from a checkpoint or backup"));
        }
      }
      return not_a_store("it is not empty and holds no RocksDB database");
    }
  }

  auto statistics = rocksdb::CreateDBStatistics();
  statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  rocksdb::DBOptions db_options = MakeDbOptions(statistics);
  std::vector<std::string> names;
  if (fresh) {
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.error_if_exists = true;
    names = OurColumnFamilies();
  } else {
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, path, &names);
    if (s.IsCorruption()) {
      return absl::DataLossError(absl::StrCat("store at ", path, " is damaged (", s.ToString(),
                                              "). recd will not open it; restore it from a checkpoint or backup"));
    }
    if (!s.ok()) return FromRocks(s, absl::StrCat("reading store at ", path));
    for (const std::string& ours : OurColumnFamilies()) {
      if (std::find(names.begin(), names.end(), ours) == names.end()) {
        if (LooksLikeDamagedStore(db_options, path, names)) {
          return absl::DataLossError(absl::StrCat(
              "store at ", path, " is damaged: its MANIFEST lacks the '", ours,
              "' column family. recd will not open it; restore it from a checkpoint or backup"));
        }
        return not_a_store(
            absl::StrCat("RocksDB database without the '", ours, "' column family"));
      }
    }
  }

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    const bool ours =
        std::find(OurColumnFamilies().begin(), OurColumnFamilies().end(), name) !=
        OurColumnFamilies().end();
    // Column families of a newer layout are opened untouched; the format check below refuses
    // such stores before anything reads them.
    descriptors.emplace_back(name, ours ? MakeCfOptions(cache, TuningFor(name))
                                        : rocksdb::ColumnFamilyOptions());
  }

  if (!fresh) RETURN_IF_ERROR(CheckDataFilesBeforeOpen(options, db_options, descriptors));

  rocksdb::DB* raw_db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, descriptors, &handles, &raw_db);
  if (!s.ok()) {
    if (IsLockError(s)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store at ", path, " is in use by another process (or another Store in this one): ",
          s.ToString()));
    }
    if (s.IsCorruption()) {
      return absl::DataLossError(absl::StrCat("store at ", path, " is damaged (", s.ToString(),
                                              "). recd will not open it; restore it from a checkpoint or backup"));
    }
    return FromRocks(s, absl::StrCat("opening store at ", path));
  }
  std::unique_ptr<RocksStore> store(new RocksStore(options, std::unique_ptr<rocksdb::DB>(raw_db),
                                                   std::move(handles), std::move(statistics)));
  // Flushes and compactions are background work, like training (nice +10): request handlers
  // first. At the normal level, the flush and compaction that follow a retrain's model write
  // (tens of MB) took about half of the server's core for a second and Recommend's p99 went
  // from ~3 to ~20 ms. At nice 19 they still run whenever requests leave the CPU idle, and a
  // flush that falls behind stalls writers (the trainer first), never readers.
  for (const rocksdb::Env::Priority pool : {rocksdb::Env::Priority::LOW, rocksdb::Env::Priority::HIGH}) {
    db_options.env->LowerThreadPoolCPUPriority(pool, rocksdb::CpuPriority::kLow).PermitUncheckedError();
  }

  if (fresh) {
    RETURN_IF_ERROR(store->InitializeNewStore());
  } else {
    bool adopt_empty = false;
    RETURN_IF_ERROR(store->CheckExistingStore(&adopt_empty));
    if (adopt_empty) RETURN_IF_ERROR(store->InitializeNewStore());
  }
  if (options.verify_checksums) {
    // Reads every data file once: finds damage now rather than when a request reaches it.
    rocksdb::Status verified = store->db_->VerifyChecksum();
    if (!verified.ok()) {
      return absl::DataLossError(absl::StrCat("store at ", path, " failed checksum verification (",
                                              verified.ToString(), "); restore it from a checkpoint or backup"));
    }
  }
  RETURN_IF_ERROR(store->LoadIdMaps());
  RETURN_IF_ERROR(store->LoadCounters());
  RETURN_IF_ERROR(store->LoadDeletedItems());
  RETURN_IF_ERROR(store->RemoveUnfinishedModelVersions());
  RETURN_IF_ERROR(store->FinishPendingErasures());
  return std::unique_ptr<Store>(std::move(store));
}

absl::Status RocksStore::InitializeNewStore() {
  rocksdb::WriteBatch batch;
  batch.Put(meta_cf_, kMetaMarkerKey, EncodeMarkerValue());
  batch.Put(meta_cf_, kMetaFormatVersionKey, EncodeFormatVersionValue(kStoreFormatVersion));
  rocksdb::WriteOptions sync;
  sync.sync = true;  // the marker is what makes the folder a store: always durable
  return FromRocks(db_->Write(sync, &batch),
                   absl::StrCat("initialising store at ", options_.path));
}

absl::Status RocksStore::CheckExistingStore(bool* adopt_empty) {
  const std::string& path = options_.path;
  ASSIGN_OR_RETURN(std::optional<std::string> marker,
                   Get(meta_cf_, kMetaMarkerKey, nullptr, "reading store marker"));
  if (!marker.has_value()) {
    // Store creation writes the column families first and the marker last. A crash in between
    // leaves every family empty: adopt such a database; refuse anything else.
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), h));
      it->SeekToFirst();
      RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading store at ", path)));
      if (it->Valid()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "folder ", path, " is not a recd store: RocksDB database without the recd marker"));
      }
    }
    *adopt_empty = true;
    return absl::OkStatus();
  }
  absl::Status marker_status = DecodeMarkerValue(*marker);
  if (!marker_status.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "folder ", path, " is not a recd store: ", marker_status.message()));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> format,
                   Get(meta_cf_, kMetaFormatVersionKey, nullptr, "reading store format"));
  if (!format.has_value()) {
    return absl::DataLossError(absl::StrCat("store at ", path, " has no format version"));
  }
  absl::StatusOr<uint32_t> version = DecodeFormatVersionValue(*format);
  if (!version.ok()) {
    return absl::DataLossError(absl::StrCat("store at ", path, ": ", version.status().message()));
  }
  if (*version > kStoreFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("store at ", path, " has format version ", *version,
                     ", newer than this build supports (", kStoreFormatVersion, ")"));
  }
  return absl::OkStatus();
}

absl::Status RocksStore::LoadIdMaps() {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // read once at Open; keep the cache for serving
  ro.readahead_size = size_t{2} << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, ids_cf_));
  IdSpace users, items;
  absl::flat_hash_set<UserIndex> erased, pending;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(IdKeyParts key, DecodeIdKey(ToView(it->key())));
    const absl::string_view value = ToView(it->value());
    switch (key.kind) {
      case IdKeyKind::kUserId:
      case IdKeyKind::kItemId: {
        ASSIGN_OR_RETURN(uint32_t index, DecodeIndexValue(value));
        IdSpace& space = key.kind == IdKeyKind::kUserId ? users : items;
        space.forward.emplace(std::string(key.id), index);
        break;
      }
      case IdKeyKind::kUserIndex:
      case IdKeyKind::kItemIndex: {
        ASSIGN_OR_RETURN(std::string id, DecodeIdValue(value));
        IdSpace& space = key.kind == IdKeyKind::kUserIndex ? users : items;
        if (space.reverse.size() <= key.index) space.reverse.resize(size_t{key.index} + 1);
        space.reverse[key.index] = std::move(id);
        break;
      }
      case IdKeyKind::kErasedUser: {
        ASSIGN_OR_RETURN(bool rows_zeroed, DecodeErasedUserValue(value));
        erased.insert(key.index);
        if (!rows_zeroed) pending.insert(key.index);
        break;
      }
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "loading id maps"));

  // Both directions are always written in one batch; disagreement is corruption.
  for (IdSpace* space : {&users, &items}) {
    const char* what = space == &users ? "user" : "item";
    size_t reverse_entries = 0;
    for (const std::string& id : space->reverse) reverse_entries += id.empty() ? 0 : 1;
    if (reverse_entries != space->forward.size()) {
      return absl::DataLossError(absl::StrCat(what, " id maps disagree: ", space->forward.size(),
                                              " ids, ", reverse_entries, " indices"));
    }
    for (const auto& [id, index] : space->forward) {
      if (index >= space->reverse.size() || space->reverse[index] != id) {
        return absl::DataLossError(
            absl::StrCat(what, " id maps disagree at index ", index));
      }
    }
  }
  ASSIGN_OR_RETURN(int64_t user_capacity, ReadCounter(kMetaUserCapacityKey));
  ASSIGN_OR_RETURN(int64_t item_capacity, ReadCounter(kMetaItemCapacityKey));
  for (auto [space, persisted] : {std::pair{&users, user_capacity}, {&items, item_capacity}}) {
    if (persisted < 0 || persisted > int64_t{kNoIndex}) {
      return absl::DataLossError(absl::StrCat("implausible capacity counter ", persisted));
    }
    space->capacity = std::max<uint32_t>(static_cast<uint32_t>(persisted),
                                         static_cast<uint32_t>(space->reverse.size()));
    space->reverse.resize(space->capacity);
  }

  MutexLock lock(&mu_);
  users_ = std::move(users);
  items_ = std::move(items);
  erased_users_ = std::move(erased);
  pending_erasures_ = std::move(pending);
  return absl::OkStatus();
}

absl::Status RocksStore::LoadCounters() {
  ASSIGN_OR_RETURN(int64_t last_sequence, ReadCounter(kMetaLastSequenceKey));
  ASSIGN_OR_RETURN(int64_t num_interactions, ReadCounter(kMetaNumInteractionsKey));
  if (last_sequence < 0 || num_interactions < 0) {
    return absl::DataLossError(absl::StrCat("store at ", options_.path,
                                            ": negative counters (last sequence ", last_sequence,
                                            ", interactions ", num_interactions, ")"));
  }
  // The counter is written with every batch; the newest log key is a cross-check.
  uint64_t newest_logged = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    it->SeekToLast();
    if (it->Valid()) {
      ASSIGN_OR_RETURN(newest_logged, DecodeLogKey(ToView(it->key())));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading the newest log entry"));
  }
  MutexLock lock(&mu_);
  last_reserved_sequence_ = std::max(static_cast<uint64_t>(last_sequence), newest_logged);
  last_committed_sequence_ = last_reserved_sequence_;
  num_interactions_ = static_cast<uint64_t>(num_interactions);
  return absl::OkStatus();
}

absl::Status RocksStore::LoadDeletedItems() {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, items_cf_));
  absl::flat_hash_set<ItemIndex> deleted;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(ItemIndex index, DecodeItemKey(ToView(it->key())));
    ASSIGN_OR_RETURN(ItemRecord record, DecodeItemValue(ToView(it->value()), index));
    if (record.deleted) deleted.insert(index);
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "loading items"));
  MutexLock lock(&mu_);
  deleted_items_ = std::move(deleted);
  return absl::OkStatus();
}

// A version is visible once its manifest exists. SaveModel writes chunks first and the
// manifest last; a crash in between leaves chunks without a manifest, removed here. Nothing
// else writes models while Open runs.
absl::Status RocksStore::RemoveUnfinishedModelVersions() {
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(ForEachVersion(
      std::nullopt, nullptr,
      [&](absl::string_view name, uint64_t version,
          const std::optional<absl::string_view>& manifest) -> absl::Status {
        if (!manifest.has_value()) {
          batch.DeleteRange(models_cf_, ModelVersionPrefix(name, version),
                            VersionRangeEnd(name, version));
        }
        return absl::OkStatus();
      }));
  if (batch.Count() == 0) return absl::OkStatus();
  return Write(batch, "removing unfinished model versions");
}

// ---- Small helpers -----------------------------------------------------------------------------

absl::Status RocksStore::Write(rocksdb::WriteBatch& batch, absl::string_view what) {
  return FromRocks(db_->Write(write_options_, &batch), what);
}

absl::StatusOr<std::optional<std::string>> RocksStore::Get(rocksdb::ColumnFamilyHandle* cf,
                                                           absl::string_view key,
                                                           const rocksdb::Snapshot* snapshot,
                                                           absl::string_view what) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string value;
  rocksdb::Status s = db_->Get(ro, cf, ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, what));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<int64_t> RocksStore::ReadCounter(absl::string_view key) const {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(meta_cf_, key, nullptr, absl::StrCat("reading counter ", key)));
  if (!value.has_value()) return 0;
  absl::StatusOr<Counter> counter = DecodeCounter(*value);
  if (!counter.ok()) {
    return absl::DataLossError(absl::StrCat(counter.status().message(), " (", key, ")"));
  }
  return counter->value;
}

absl::StatusOr<std::optional<ModelManifest>> RocksStore::ReadManifest(
    absl::string_view name, uint64_t version, const rocksdb::Snapshot* snapshot) const {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(models_cf_, ModelManifestKey(name, version), snapshot,
                       absl::StrCat("reading ", ModelLabel(name, version))));
  if (!value.has_value()) return std::optional<ModelManifest>();
  absl::StatusOr<ModelManifest> manifest = DecodeManifest(*value);
  if (!manifest.ok()) {
    return absl::DataLossError(
        absl::StrCat(ModelLabel(name, version), ": ", manifest.status().message()));
  }
  return std::optional<ModelManifest>(std::move(*manifest));
}

absl::Status RocksStore::ForEachVersion(
    std::optional<absl::string_view> only_name, const rocksdb::Snapshot* snapshot,
    const std::function<absl::Status(absl::string_view, uint64_t,
                                     const std::optional<absl::string_view>&)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string lower, upper;
  if (only_name.has_value()) {
    lower = ModelNamePrefix(*only_name);
    upper = std::string(*only_name) + '\x01';
  }
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  if (only_name.has_value()) {
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, models_cf_));
  it->Seek(ToSlice(lower));
  while (it->Valid()) {
    absl::StatusOr<ModelKeyParts> parts = DecodeModelKey(ToView(it->key()));
    if (!parts.ok()) return parts.status();
    const std::string name(parts->name);
    const uint64_t version = parts->version;
    std::optional<absl::string_view> manifest;
    // The manifest sorts first among a version's keys.
    if (parts->part == ModelKeyPart::kManifest) manifest = ToView(it->value());
    RETURN_IF_ERROR(fn(name, version, manifest));
    it->Seek(VersionRangeEnd(name, version));
  }
  return FromRocks(it->status(), "scanning model versions");
}

// ---- Id maps -------------------------------------------------------------------------------------

std::optional<UserIndex> RocksStore::FindUser(absl::string_view user_id) const {
  ReaderMutexLock lock(&mu_);
  auto it = users_.forward.find(user_id);
  if (it == users_.forward.end()) return std::nullopt;
  return it->second;
}

std::optional<ItemIndex> RocksStore::FindItem(absl::string_view item_id) const {
  ReaderMutexLock lock(&mu_);
  auto it = items_.forward.find(item_id);
  if (it == items_.forward.end()) return std::nullopt;
  return it->second;
}

std::string RocksStore::UserId(UserIndex user) const {
  ReaderMutexLock lock(&mu_);
  return users_.IdOf(user);
}

std::string RocksStore::ItemId(ItemIndex item) const {
  ReaderMutexLock lock(&mu_);
  return items_.IdOf(item);
}

std::vector<std::string> RocksStore::ItemIds(absl::Span<const ItemIndex> items) const {
  std::vector<std::string> out;
  out.reserve(items.size());
  ReaderMutexLock lock(&mu_);
  for (ItemIndex item : items) out.push_back(items_.IdOf(item));
  return out;
}

// ---- Interactions --------------------------------------------------------------------------------

absl::StatusOr<AppendResult> RocksStore::AppendInteractions(
    absl::Span<const InteractionInput> batch) {
  AppendResult result;
  if (batch.empty()) return result;
  if (batch.size() >= kNoIndex) {
    return absl::InvalidArgumentError(absl::StrCat("batch of ", batch.size(), " interactions"));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    RETURN_IF_ERROR(ValidateId(batch[i].user_id, "user_id", i));
    RETURN_IF_ERROR(ValidateId(batch[i].item_id, "item_id", i));
    if (!IsValidEventType(static_cast<int>(batch[i].event))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "event of entry ", i, " is ", static_cast<int>(batch[i].event), ", not a known type"));
    }
  }

  ReaderMutexLock gate(&append_gate_);
  std::vector<Claim> user_claims, item_claims;
  result.users.resize(batch.size());
  result.items.resize(batch.size());
  {
    MutexLock lock(&mu_);
    if (uint64_t{users_.capacity} + batch.size() >= kNoIndex ||
        uint64_t{items_.capacity} + batch.size() >= kNoIndex) {
      return absl::ResourceExhaustedError("the store has run out of user or item indices");
    }
    absl::flat_hash_map<std::string, uint32_t> seen_users, seen_items;
    for (size_t i = 0; i < batch.size(); ++i) {
      result.users[i] = ResolveLocked(users_, batch[i].user_id, seen_users, user_claims);
      result.items[i] = ResolveLocked(items_, batch[i].item_id, seen_items, item_claims);
    }
    result.first_sequence = last_reserved_sequence_ + 1;
    last_reserved_sequence_ += batch.size();
    result.last_sequence = last_reserved_sequence_;
    in_flight_.insert(result.first_sequence);
  }

  rocksdb::WriteBatch wb;
  // What ReadHistory will decode from these keys, for the cache.
  bool cacheable = history_cache_ != nullptr;
  std::vector<HistoryEntry> cached_entries;
  if (cacheable) cached_entries.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const InteractionInput& in = batch[i];
    const uint64_t sequence = result.first_sequence + i;
    LogRecord log{result.users[i], result.items[i], in.event, in.has_value, in.value,
                  in.timestamp_ms};
    wb.Put(log_cf_, LogKey(sequence), EncodeLogValue(log));
    HistoryEntry entry;
    entry.item = result.items[i];
    entry.timestamp_ms = in.timestamp_ms;
    entry.value = in.value;
    entry.event = in.event;
    entry.has_value = in.has_value;
    const std::string value = EncodeHistoryValue(entry);
    wb.Put(history_cf_, HistoryKey(result.users[i], sequence), value);
    if (cacheable) {
      // Decoded, not copied: the cache then holds exactly what a read returns, whatever the
      // encoding normalises. (No early return here: the reservations above must be finished.)
      absl::StatusOr<HistoryEntry> decoded = DecodeHistoryValue(value, sequence);
      cacheable = decoded.ok();
      if (cacheable) cached_entries.push_back(*decoded);
    }
  }
  PutClaims(wb, ids_cf_, user_claims, /*users=*/true);
  PutClaims(wb, ids_cf_, item_claims, /*users=*/false);
  if (!user_claims.empty()) {
    wb.Merge(meta_cf_, kMetaUserCapacityKey,
             CounterOperand(CounterOp::kMax, ClaimedCapacity(user_claims)));
  }
  if (!item_claims.empty()) {
    wb.Merge(meta_cf_, kMetaItemCapacityKey,
             CounterOperand(CounterOp::kMax, ClaimedCapacity(item_claims)));
  }
  wb.Merge(meta_cf_, kMetaLastSequenceKey,
           CounterOperand(CounterOp::kMax, static_cast<int64_t>(result.last_sequence)));
  wb.Merge(meta_cf_, kMetaNumInteractionsKey,
           CounterOperand(CounterOp::kAdd, static_cast<int64_t>(batch.size())));

  absl::Status written = Write(wb, "appending interactions");
  // Before the acknowledgement, so that every later read sees the batch (read-your-writes).
  // RocksDB does not say whether a failed write is visible: forget its users then.
  if (history_cache_ != nullptr) {
    if (written.ok() && cacheable) {
      history_cache_->Apply(result.users, cached_entries);
    } else {
      history_cache_->Invalidate(result.users);
    }
  }
  {
    MutexLock lock(&mu_);
    FinishClaimsLocked(users_, user_claims, written.ok());
    FinishClaimsLocked(items_, item_claims, written.ok());
    in_flight_.erase(result.first_sequence);
    if (written.ok()) {
      last_committed_sequence_ = std::max(last_committed_sequence_, result.last_sequence);
      num_interactions_ += batch.size();
    }
  }
  RETURN_IF_ERROR(written);
  result.accepted = static_cast<uint32_t>(batch.size());
  for (const Claim& c : user_claims) result.new_users += c.created ? 1 : 0;
  for (const Claim& c : item_claims) result.new_items += c.created ? 1 : 0;
  return result;
}

absl::Status RocksStore::GetUserHistory(UserIndex user, size_t max_entries,
                                        std::vector<HistoryEntry>* out) const {
  if (history_cache_ == nullptr || !history_cache_->Serves(max_entries) || user == kNoIndex) {
    ASSIGN_OR_RETURN(*out, ReadHistory(user, max_entries));
    return absl::OkStatus();
  }
  HistoryCache::Ticket ticket;
  if (history_cache_->Lookup(user, max_entries, &ticket, out)) return absl::OkStatus();
  // A miss reads the whole cached depth, so that later reads of any size up to it hit.
  ASSIGN_OR_RETURN(*out, ReadHistory(user, history_cache_->depth()));
  history_cache_->Install(user, ticket, *out);
  if (out->size() > max_entries) {
    out->erase(out->begin(), out->end() - static_cast<ptrdiff_t>(max_entries));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<HistoryEntry>> RocksStore::ReadHistory(UserIndex user,
                                                                  size_t max_entries) const {
  std::vector<HistoryEntry> history;
  if (user == kNoIndex) return history;
  const std::string lower = HistoryPrefix(user);
  const std::string upper = HistoryPrefix(user + 1);  // user + 1 <= kNoIndex: no overflow
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, history_cf_));

  auto decode = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(HistoryKeyParts key, DecodeHistoryKey(ToView(it->key())));
    ASSIGN_OR_RETURN(HistoryEntry entry, DecodeHistoryValue(ToView(it->value()), key.sequence));
    history.push_back(entry);
    return absl::OkStatus();
  };
  if (max_entries == 0) {
    for (it->Seek(lower_slice); it->Valid(); it->Next()) RETURN_IF_ERROR(decode());
  } else {
    // Seek backwards from the user's largest possible key (its prefix is the user's, so the
    // prefix bloom filter tests the right user) and keep the newest max_entries.
    history.reserve(std::min<size_t>(max_entries, 4096));
    for (it->SeekForPrev(HistoryKey(user, std::numeric_limits<uint64_t>::max()));
         it->Valid() && history.size() < max_entries; it->Prev()) {
      RETURN_IF_ERROR(decode());
    }
    std::reverse(history.begin(), history.end());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading history of user ", user)));
  return history;
}

// The snapshot is a prefix of the log: every sequence <= last_sequence that was ever committed
// (and not erased) is included, and nothing above it. Writes commit out of sequence order
// (sequences are reserved before the write), so the cut is placed below the oldest write still
// in flight when the snapshot starts; anything newer that already committed is left for the
// next snapshot. Trainers can therefore use last_sequence as "trained through" without gaps.
absl::StatusOr<TrainingSnapshot> RocksStore::ReadTrainingSnapshot() const {
  TrainingSnapshot snapshot;
  uint64_t expected_size;
  {
    ReaderMutexLock lock(&mu_);
    snapshot.last_sequence =
        in_flight_.empty() ? last_reserved_sequence_ : *in_flight_.begin() - 1;
    snapshot.num_users = users_.capacity;
    snapshot.num_items = items_.capacity;
    expected_size = num_interactions_;
  }
  // Taken after the cut: every write below the cut has finished, so it is visible.
  rocksdb::ManagedSnapshot pinned(db_.get());
  rocksdb::ReadOptions ro;
  ro.snapshot = pinned.snapshot();
  ro.fill_cache = false;  // a full scan would evict the serving working set
  ro.readahead_size = size_t{2} << 20;
  const std::string upper = LogKey(snapshot.last_sequence + 1);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;

  snapshot.interactions.reserve(expected_size);
  snapshot.sequences.reserve(expected_size);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(uint64_t sequence, DecodeLogKey(ToView(it->key())));
    ASSIGN_OR_RETURN(LogRecord r, DecodeLogValue(ToView(it->value())));
    if (r.user >= snapshot.num_users || r.item >= snapshot.num_items) {
      return absl::DataLossError(absl::StrCat("log entry ", sequence, " references user ",
                                              r.user, " / item ", r.item, " beyond capacity ",
                                              snapshot.num_users, " / ", snapshot.num_items));
    }
    Interaction& x = snapshot.interactions.emplace_back();
    x.user = r.user;
    x.item = r.item;
    x.timestamp_ms = r.timestamp_ms;
    x.value = r.value;
    x.event = r.event;
    x.has_value = r.has_value;
    snapshot.sequences.push_back(sequence);
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the interaction log"));

  rocksdb::ReadOptions item_ro;
  item_ro.snapshot = pinned.snapshot();
  item_ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> items(db_->NewIterator(item_ro, items_cf_));
  snapshot.item_features.resize(snapshot.num_items);
  for (items->SeekToFirst(); items->Valid(); items->Next()) {
    ASSIGN_OR_RETURN(ItemIndex index, DecodeItemKey(ToView(items->key())));
    if (index >= snapshot.num_items) break;  // created after the cut
    ASSIGN_OR_RETURN(ItemRecord record, DecodeItemValue(ToView(items->value()), index));
    snapshot.item_features[index].categories = std::move(record.categories);
    snapshot.item_features[index].tags = std::move(record.tags);
  }
  RETURN_IF_ERROR(FromRocks(items->status(), "reading item features"));
  return snapshot;
}

// ---- Users ---------------------------------------------------------------------------------------

// Two steps, in this order:
//  1. One atomic batch deletes every history and log entry of the user and both id-map entries,
//     and writes a durable erased-user record "rows not yet zeroed".
//  2. The user's row is zeroed in every stored model version, then the record is marked done.
// If the process dies between the steps, the record survives: Open (and the next DeleteUser
// call, whatever its argument) finishes step 2. A retried DeleteUser for the same id returns
// NotFound, since the id is already gone, but still completes the job. Meanwhile SaveModel
// zeroes erased users' rows in every new version, so a model trained before the deletion
// cannot bring the row back.
absl::StatusOr<DeleteUserResult> RocksStore::DeleteUser(absl::string_view user_id) {
  if (user_id.empty()) return absl::InvalidArgumentError("user_id is empty");
  RETURN_IF_ERROR(FinishPendingErasures());

  DeleteUserResult result;
  {
    MutexLock gate(&append_gate_);
    {
      MutexLock lock(&mu_);
      auto it = users_.forward.find(user_id);
      if (it == users_.forward.end()) {
        return absl::NotFoundError(absl::StrCat("unknown user '", user_id, "'"));
      }
      result.index = it->second;
    }
    // No append is in flight (gate), so the scan sees every entry of the user.
    rocksdb::WriteBatch batch;
    const std::string lower = HistoryPrefix(result.index);
    const std::string upper = HistoryPrefix(result.index + 1);
    rocksdb::Slice lower_slice(lower), upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
    ro.prefix_same_as_start = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, history_cf_));
    for (it->Seek(lower_slice); it->Valid(); it->Next()) {
      ASSIGN_OR_RETURN(HistoryKeyParts key, DecodeHistoryKey(ToView(it->key())));
      batch.Delete(history_cf_, it->key());
      batch.Delete(log_cf_, LogKey(key.sequence));
      ++result.erased_interactions;
    }
    RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading history of '", user_id, "'")));
    batch.Delete(ids_cf_, UserIdKey(user_id));
    batch.Delete(ids_cf_, UserIndexKey(result.index));
    batch.Put(ids_cf_, ErasedUserKey(result.index), EncodeErasedUserValue(false));
    // A fresh value each time, so a purge that started before this deletion keeps the mark.
    batch.Put(meta_cf_, kMetaPurgePendingKey, absl::StrCat(absl::ToUnixNanos(absl::Now()), ":", result.index));
    batch.Merge(meta_cf_, kMetaNumInteractionsKey,
                CounterOperand(CounterOp::kAdd, -static_cast<int64_t>(result.erased_interactions)));
    absl::Status written = Write(batch, absl::StrCat("deleting user '", user_id, "'"));
    // Whether or not the write landed: the next read goes to RocksDB, and nothing of the user
    // stays in memory.
    if (history_cache_ != nullptr) history_cache_->Invalidate({result.index});
    RETURN_IF_ERROR(written);

    MutexLock lock(&mu_);
    users_.forward.erase(user_id);
    users_.reverse[result.index].clear();
    erased_users_.insert(result.index);
    pending_erasures_.insert(result.index);
    num_interactions_ -= result.erased_interactions;
  }
  RETURN_IF_ERROR(FinishPendingErasures());
  return result;
}

absl::Status RocksStore::FinishPendingErasures() {
  MutexLock models(&models_mu_);
  std::vector<UserIndex> users;
  {
    MutexLock lock(&mu_);
    users.assign(pending_erasures_.begin(), pending_erasures_.end());
  }
  if (users.empty()) return absl::OkStatus();
  return ZeroUserRowsLocked(std::move(users));
}

absl::Status RocksStore::ZeroUserRowsLocked(std::vector<UserIndex> users) {
  std::sort(users.begin(), users.end());
  // Collect the versions first (one Seek each), then rewrite the affected chunks, one batch per
  // version so that a concurrent LoadModel (which reads from a snapshot) sees each version
  // either before or after.
  // A user-indexed matrix of a stored version: user_factors or a "user_*" tensor.
  struct Version {
    std::string name;
    uint64_t version;
    uint32_t matrix;
    MatrixShape shape;
  };
  std::vector<Version> versions;
  RETURN_IF_ERROR(ForEachVersion(
      std::nullopt, nullptr,
      [&](absl::string_view name, uint64_t version,
          const std::optional<absl::string_view>& manifest) -> absl::Status {
        if (!manifest.has_value()) return absl::OkStatus();
        absl::StatusOr<ModelManifest> m = DecodeManifest(*manifest);
        if (!m.ok()) {
          return absl::DataLossError(
              absl::StrCat(ModelLabel(name, version), ": ", m.status().message()));
        }
        versions.push_back(Version{std::string(name), version, kUserFactorsMatrix, m->user_factors});
        for (size_t t = 0; t < m->tensor_names.size(); ++t) {
          if (IsUserIndexedTensor(m->tensor_names[t])) {
            versions.push_back(Version{std::string(name), version,
                                       static_cast<uint32_t>(kFirstTensorMatrix + t), m->tensors[t]});
          }
        }
        return absl::OkStatus();
      }));

  for (const Version& v : versions) {
    const MatrixShape& shape = v.shape;
    if (shape.num_chunks() == 0) continue;
    rocksdb::WriteBatch batch;
    for (size_t i = 0; i < users.size();) {
      if (users[i] >= shape.rows) break;  // sorted: no later user has a row either
      const uint32_t chunk = static_cast<uint32_t>(users[i] / shape.rows_per_chunk);
      const std::string key = ModelChunkKey(v.name, v.version, v.matrix, chunk);
      ASSIGN_OR_RETURN(std::optional<std::string> value,
                       Get(models_cf_, key, nullptr, ModelLabel(v.name, v.version)));
      if (!value.has_value()) {
        return absl::DataLossError(absl::StrCat(ModelLabel(v.name, v.version), ": missing chunk ", chunk,
                                                " of user-indexed matrix ", v.matrix));
      }
      absl::StatusOr<ChunkView> view = DecodeChunk(*value);
      if (!view.ok() || view->cols != shape.cols ||
          view->first_row != uint64_t{chunk} * shape.rows_per_chunk) {
        return absl::DataLossError(absl::StrCat(ModelLabel(v.name, v.version), ": bad chunk ", chunk,
                                                " of user-indexed matrix ", v.matrix));
      }
      std::vector<float> rows(static_cast<size_t>(view->rows) * view->cols);
      view->CopyTo(rows.data());
      bool changed = false;
      // Every erased user whose row falls in this chunk.
      for (; i < users.size() && users[i] / shape.rows_per_chunk == chunk; ++i) {
        const uint64_t row = users[i] - view->first_row;
        if (row >= view->rows) continue;
        float* begin = rows.data() + row * view->cols;
        for (uint32_t c = 0; c < view->cols; ++c) {
          if (std::bit_cast<uint32_t>(begin[c]) != 0) changed = true;
          begin[c] = 0.0f;
        }
      }
      if (changed) {
        batch.Put(models_cf_, key,
                  EncodeChunk(view->first_row, view->rows, view->cols, rows.data()));
      }
    }
    if (batch.Count() > 0) {
      RETURN_IF_ERROR(Write(batch, absl::StrCat("erasing user rows of ",
                                                ModelLabel(v.name, v.version))));
    }
  }

  rocksdb::WriteBatch done;
  for (UserIndex user : users) done.Put(ids_cf_, ErasedUserKey(user), EncodeErasedUserValue(true));
  RETURN_IF_ERROR(Write(done, "recording finished user erasures"));
  MutexLock lock(&mu_);
  for (UserIndex user : users) pending_erasures_.erase(user);
  return absl::OkStatus();
}

// ---- Items ---------------------------------------------------------------------------------------

absl::StatusOr<UpsertResult> RocksStore::UpsertItems(absl::Span<const ItemRecord> items) {
  UpsertResult result;
  if (items.empty()) return result;
  if (items.size() >= kNoIndex) {
    return absl::InvalidArgumentError(absl::StrCat("batch of ", items.size(), " items"));
  }
  for (size_t i = 0; i < items.size(); ++i) RETURN_IF_ERROR(ValidateId(items[i].id, "id", i));

  MutexLock items_lock(&items_mu_);
  std::vector<Claim> claims;
  result.indices.resize(items.size());
  {
    MutexLock lock(&mu_);
    if (uint64_t{items_.capacity} + items.size() >= kNoIndex) {
      return absl::ResourceExhaustedError("the store has run out of item indices");
    }
    absl::flat_hash_map<std::string, uint32_t> seen;
    for (size_t i = 0; i < items.size(); ++i) {
      result.indices[i] = ResolveLocked(items_, items[i].id, seen, claims);
    }
  }
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < items.size(); ++i) {
    ItemRecord record = items[i];
    record.index = result.indices[i];
    record.deleted = false;
    // Later duplicates in the batch overwrite earlier ones, as if upserted one by one.
    batch.Put(items_cf_, ItemKey(record.index), EncodeItemValue(record));
  }
  PutClaims(batch, ids_cf_, claims, /*users=*/false);
  if (!claims.empty()) {
    batch.Merge(meta_cf_, kMetaItemCapacityKey,
                CounterOperand(CounterOp::kMax, ClaimedCapacity(claims)));
  }
  absl::Status written = Write(batch, "upserting items");
  {
    MutexLock lock(&mu_);
    FinishClaimsLocked(items_, claims, written.ok());
    if (written.ok()) {
      for (ItemIndex index : result.indices) deleted_items_.erase(index);
    }
  }
  RETURN_IF_ERROR(written);
  result.upserted = static_cast<uint32_t>(items.size());
  for (const Claim& c : claims) result.created += c.created ? 1 : 0;
  return result;
}

absl::Status RocksStore::DeleteItem(absl::string_view item_id) {
  MutexLock items_lock(&items_mu_);
  ItemIndex index;
  {
    MutexLock lock(&mu_);
    auto it = items_.forward.find(item_id);
    if (it == items_.forward.end()) {
      return absl::NotFoundError(absl::StrCat("unknown item '", item_id, "'"));
    }
    index = it->second;
    if (deleted_items_.contains(index)) {
      return absl::NotFoundError(absl::StrCat("item '", item_id, "' is already deleted"));
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(items_cf_, ItemKey(index), nullptr,
                       absl::StrCat("reading item '", item_id, "'")));
  ItemRecord record;
  if (value.has_value()) {
    ASSIGN_OR_RETURN(record, DecodeItemValue(*value, index));
  } else {
    record.id = std::string(item_id);  // created by an interaction: no record yet
    record.index = index;
  }
  record.deleted = true;
  rocksdb::WriteBatch batch;
  batch.Put(items_cf_, ItemKey(index), EncodeItemValue(record));
  RETURN_IF_ERROR(Write(batch, absl::StrCat("deleting item '", item_id, "'")));
  MutexLock lock(&mu_);
  deleted_items_.insert(index);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ItemRecord>> RocksStore::ListItems() const {
  std::vector<std::string> ids;
  {
    ReaderMutexLock lock(&mu_);
    ids = items_.reverse;
  }
  std::vector<ItemRecord> records;
  records.reserve(ids.size());
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, items_cf_));
  size_t next = 0;  // first index not yet emitted
  // Items created by interactions have no record: they are active and without attributes.
  auto emit_implicit_until = [&](size_t end) {
    for (; next < end && next < ids.size(); ++next) {
      if (ids[next].empty()) continue;
      ItemRecord& r = records.emplace_back();
      r.id = ids[next];
      r.index = static_cast<ItemIndex>(next);
    }
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(ItemIndex index, DecodeItemKey(ToView(it->key())));
    ASSIGN_OR_RETURN(ItemRecord record, DecodeItemValue(ToView(it->value()), index));
    emit_implicit_until(index);
    records.push_back(std::move(record));
    next = size_t{index} + 1;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing items"));
  emit_implicit_until(ids.size());
  return records;
}

absl::StatusOr<std::optional<ItemRecord>> RocksStore::GetItem(absl::string_view item_id) const {
  std::optional<ItemIndex> index = FindItem(item_id);
  if (!index.has_value()) return std::optional<ItemRecord>();
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(items_cf_, ItemKey(*index), nullptr,
                       absl::StrCat("reading item '", item_id, "'")));
  ItemRecord record;
  if (value.has_value()) {
    ASSIGN_OR_RETURN(record, DecodeItemValue(*value, *index));
  } else {
    record.id = std::string(item_id);
    record.index = *index;
  }
  return std::optional<ItemRecord>(std::move(record));
}

// ---- Models --------------------------------------------------------------------------------------

absl::StatusOr<uint64_t> RocksStore::SaveModel(const ModelData& data) {
  const std::string& name = data.meta.name;
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateMatrix(data.user_factors, "user_factors"));
  RETURN_IF_ERROR(ValidateMatrix(data.item_factors, "item_factors"));
  if (data.tensors.size() > kNoIndex - kFirstTensorMatrix) {
    return absl::InvalidArgumentError(absl::StrCat(data.tensors.size(), " tensors"));
  }
  for (const auto& [tensor_name, tensor] : data.tensors) {
    RETURN_IF_ERROR(ValidateMatrix(tensor, absl::StrCat("tensor '", tensor_name, "'")));
  }

  MutexLock models(&models_mu_);
  ASSIGN_OR_RETURN(int64_t last_version, ReadCounter(ModelLastVersionKey(name)));
  const uint64_t version = static_cast<uint64_t>(last_version) + 1;
  // Rows of erased users are stored as zeros (see DeleteUser), in user_factors and in every
  // user-indexed tensor; rows beyond a matrix's end are skipped by put_matrix.
  std::vector<uint64_t> erased_rows;
  {
    ReaderMutexLock lock(&mu_);
    erased_rows.assign(erased_users_.begin(), erased_users_.end());
  }
  std::sort(erased_rows.begin(), erased_rows.end());

  ModelManifest manifest;
  manifest.meta = data.meta;
  manifest.meta.version = version;
  manifest.user_factors = ShapeOf(data.user_factors);
  manifest.item_factors = ShapeOf(data.item_factors);
  for (const auto& [tensor_name, tensor] : data.tensors) {
    manifest.tensor_names.push_back(tensor_name);
    manifest.tensors.push_back(ShapeOf(tensor));
  }

  // The version counter goes out with the first batch: once any part of version N may be on
  // disk, N is never handed out again.
  rocksdb::WriteBatch batch;
  batch.Merge(meta_cf_, ModelLastVersionKey(name),
              CounterOperand(CounterOp::kMax, static_cast<int64_t>(version)));
  auto flush = [&](bool force) -> absl::Status {
    if (batch.Count() == 0 || (!force && batch.GetDataSize() < kModelBatchBytes)) {
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(Write(batch, absl::StrCat("saving ", ModelLabel(name, version))));
    batch.Clear();
    return absl::OkStatus();
  };
  auto put_matrix = [&](uint32_t matrix, const EmbeddingMatrix& m, const MatrixShape& shape,
                        const std::vector<uint64_t>& zero_rows) -> absl::Status {
    std::vector<float> scratch;
    for (uint32_t c = 0; c < shape.num_chunks(); ++c) {
      const uint64_t first = uint64_t{c} * shape.rows_per_chunk;
      const auto rows = static_cast<uint32_t>(std::min<uint64_t>(shape.rows_per_chunk,
                                                                 shape.rows - first));
      const float* values = m.data() + first * shape.cols;
      auto zero = std::lower_bound(zero_rows.begin(), zero_rows.end(), first);
      if (zero != zero_rows.end() && *zero < first + rows) {
        scratch.assign(values, values + size_t{rows} * shape.cols);
        for (; zero != zero_rows.end() && *zero < first + rows; ++zero) {
          std::fill_n(scratch.begin() + (*zero - first) * shape.cols, shape.cols, 0.0f);
        }
        values = scratch.data();
      }
      batch.Put(models_cf_, ModelChunkKey(name, version, matrix, c),
                EncodeChunk(first, rows, static_cast<uint32_t>(shape.cols), values));
      RETURN_IF_ERROR(flush(/*force=*/false));
    }
    return absl::OkStatus();
  };

  absl::Status status = put_matrix(kUserFactorsMatrix, data.user_factors, manifest.user_factors,
                                   erased_rows);
  if (status.ok()) {
    status = put_matrix(kItemFactorsMatrix, data.item_factors, manifest.item_factors, {});
  }
  uint32_t matrix = kFirstTensorMatrix;
  for (const auto& [tensor_name, tensor] : data.tensors) {
    if (!status.ok()) break;
    status = put_matrix(matrix, tensor, manifest.tensors[matrix - kFirstTensorMatrix],
                        IsUserIndexedTensor(tensor_name) ? erased_rows : std::vector<uint64_t>());
    ++matrix;
  }
  if (status.ok()) status = flush(/*force=*/true);
  if (status.ok()) {
    // Last: the manifest makes the version visible.
    batch.Put(models_cf_, ModelManifestKey(name, version), EncodeManifest(manifest));
    status = flush(/*force=*/true);
  }
  if (!status.ok()) {
    // Best effort: drop the chunks already written. If this fails too, Open removes them
    // (they have no manifest), so the original error is the one worth reporting.
    rocksdb::WriteBatch cleanup;
    cleanup.DeleteRange(models_cf_, ModelVersionPrefix(name, version),
                        VersionRangeEnd(name, version));
    db_->Write(write_options_, &cleanup).PermitUncheckedError();
    return status;
  }
  return version;
}

absl::StatusOr<ModelData> RocksStore::LoadModel(absl::string_view name, uint64_t version) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  const std::string label = ModelLabel(name, version);
  rocksdb::ManagedSnapshot pinned(db_.get());
  ASSIGN_OR_RETURN(std::optional<ModelManifest> manifest,
                   ReadManifest(name, version, pinned.snapshot()));
  if (!manifest.has_value()) return absl::NotFoundError(absl::StrCat(label, " is not stored"));

  ModelData data;
  data.meta = manifest->meta;
  std::vector<EmbeddingMatrix*> matrices = {&data.user_factors, &data.item_factors};
  std::vector<const MatrixShape*> shapes = {&manifest->user_factors, &manifest->item_factors};
  for (size_t k = 0; k < manifest->tensor_names.size(); ++k) {
    matrices.push_back(&data.tensors[manifest->tensor_names[k]]);
    shapes.push_back(&manifest->tensors[k]);
  }
  std::vector<std::vector<bool>> seen(matrices.size());
  for (size_t k = 0; k < matrices.size(); ++k) {
    matrices[k]->resize(static_cast<Eigen::Index>(shapes[k]->rows),
                        static_cast<Eigen::Index>(shapes[k]->cols));
    seen[k].assign(shapes[k]->num_chunks(), false);
  }

  const std::string lower = ModelVersionPrefix(name, version);
  const std::string upper = VersionRangeEnd(name, version);
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.snapshot = pinned.snapshot();
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  ro.readahead_size = size_t{4} << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, models_cf_));
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(ModelKeyParts key, DecodeModelKey(ToView(it->key())));
    if (key.part == ModelKeyPart::kManifest) continue;
    if (key.matrix >= matrices.size() || key.chunk >= seen[key.matrix].size()) {
      return absl::DataLossError(absl::StrCat(label, ": unexpected chunk ", key.chunk,
                                              " of matrix ", key.matrix));
    }
    const MatrixShape& shape = *shapes[key.matrix];
    absl::StatusOr<ChunkView> chunk = DecodeChunk(ToView(it->value()));
    if (!chunk.ok()) {
      return absl::DataLossError(absl::StrCat(label, ": ", chunk.status().message()));
    }
    const uint64_t first = uint64_t{key.chunk} * shape.rows_per_chunk;
    const uint64_t rows = std::min<uint64_t>(shape.rows_per_chunk, shape.rows - first);
    if (chunk->first_row != first || chunk->rows != rows || chunk->cols != shape.cols) {
      return absl::DataLossError(absl::StrCat(label, ": chunk ", key.chunk, " of matrix ",
                                              key.matrix, " has the wrong shape"));
    }
    chunk->CopyTo(matrices[key.matrix]->data() + first * shape.cols);
    seen[key.matrix][key.chunk] = true;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading ", label)));
  for (size_t k = 0; k < seen.size(); ++k) {
    for (size_t c = 0; c < seen[k].size(); ++c) {
      if (!seen[k][c]) {
        return absl::DataLossError(
            absl::StrCat(label, ": missing chunk ", c, " of matrix ", k));
      }
    }
  }
  return data;
}

absl::StatusOr<std::vector<ModelMetadata>> RocksStore::ListModelVersions(
    absl::string_view name) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  rocksdb::ManagedSnapshot pinned(db_.get());
  std::vector<ModelMetadata> versions;
  RETURN_IF_ERROR(ForEachVersion(
      name, pinned.snapshot(),
      [&](absl::string_view version_name, uint64_t version,
          const std::optional<absl::string_view>& manifest) -> absl::Status {
        if (!manifest.has_value()) return absl::OkStatus();  // a save in progress
        absl::StatusOr<ModelManifest> m = DecodeManifest(*manifest);
        if (!m.ok()) {
          return absl::DataLossError(
              absl::StrCat(ModelLabel(version_name, version), ": ", m.status().message()));
        }
        versions.push_back(std::move(m->meta));
        return absl::OkStatus();
      }));
  std::reverse(versions.begin(), versions.end());
  return versions;
}

absl::StatusOr<std::vector<std::string>> RocksStore::ListModelNames() const {
  std::vector<std::string> names;
  RETURN_IF_ERROR(ForEachVersion(
      std::nullopt, nullptr,
      [&](absl::string_view name, uint64_t version,
          const std::optional<absl::string_view>& manifest) -> absl::Status {
        if (manifest.has_value() && (names.empty() || names.back() != name)) {
          names.emplace_back(name);
        }
        return absl::OkStatus();
      }));
  return names;
}

absl::Status RocksStore::SetLiveVersion(absl::string_view name, uint64_t version) {
  RETURN_IF_ERROR(ValidateModelName(name));
  MutexLock models(&models_mu_);
  ASSIGN_OR_RETURN(std::optional<ModelManifest> manifest, ReadManifest(name, version, nullptr));
  if (!manifest.has_value()) {
    return absl::NotFoundError(absl::StrCat(ModelLabel(name, version), " is not stored"));
  }
  rocksdb::WriteBatch batch;
  batch.Put(meta_cf_, ModelLiveVersionKey(name), EncodeVersionValue(version));
  return Write(batch, absl::StrCat("making ", ModelLabel(name, version), " live"));
}

absl::StatusOr<std::optional<uint64_t>> RocksStore::GetLiveVersion(absl::string_view name) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(meta_cf_, ModelLiveVersionKey(name), nullptr,
                       absl::StrCat("reading live version of model '", name, "'")));
  if (!value.has_value()) return std::optional<uint64_t>();
  absl::StatusOr<uint64_t> version = DecodeVersionValue(*value);
  if (!version.ok()) {
    return absl::DataLossError(
        absl::StrCat("model '", name, "': ", version.status().message()));
  }
  return std::optional<uint64_t>(*version);
}

absl::Status RocksStore::MarkRejected(absl::string_view name, uint64_t version,
                                      absl::string_view reason) {
  RETURN_IF_ERROR(ValidateModelName(name));
  MutexLock models(&models_mu_);
  ASSIGN_OR_RETURN(std::optional<ModelManifest> manifest, ReadManifest(name, version, nullptr));
  if (!manifest.has_value()) {
    return absl::NotFoundError(absl::StrCat(ModelLabel(name, version), " is not stored"));
  }
  manifest->meta.rejected = true;
  manifest->meta.reject_reason = std::string(reason);
  rocksdb::WriteBatch batch;
  batch.Put(models_cf_, ModelManifestKey(name, version), EncodeManifest(*manifest));
  return Write(batch, absl::StrCat("rejecting ", ModelLabel(name, version)));
}

absl::Status RocksStore::DeleteModelVersion(absl::string_view name, uint64_t version) {
  RETURN_IF_ERROR(ValidateModelName(name));
  MutexLock models(&models_mu_);
  ASSIGN_OR_RETURN(std::optional<uint64_t> live, GetLiveVersion(name));
  if (live.has_value() && *live == version) {
    return absl::FailedPreconditionError(
        absl::StrCat(ModelLabel(name, version), " is live and cannot be deleted"));
  }
  ASSIGN_OR_RETURN(std::optional<ModelManifest> manifest, ReadManifest(name, version, nullptr));
  if (!manifest.has_value()) {
    return absl::NotFoundError(absl::StrCat(ModelLabel(name, version), " is not stored"));
  }
  // One range deletion removes the manifest and every chunk atomically, without reading them.
  rocksdb::WriteBatch batch;
  batch.DeleteRange(models_cf_, ModelVersionPrefix(name, version), VersionRangeEnd(name, version));
  return Write(batch, absl::StrCat("deleting ", ModelLabel(name, version)));
}

// ---- Operations ----------------------------------------------------------------------------------

absl::Status RocksStore::CreateCheckpoint(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("checkpoint folder is empty");
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("checkpoint folder ", dir, " already exists"));
  }
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw),
                            "preparing a checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush = 0: flush the memtables so the copy is SST files (hard links where the
  // file system allows) plus a short WAL.
  return FromRocks(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0),
                   absl::StrCat("writing checkpoint to ", dir));
}

absl::StatusOr<bool> RocksStore::PurgePending() const {
  ASSIGN_OR_RETURN(std::optional<std::string> mark, Get(meta_cf_, kMetaPurgePendingKey, nullptr, "reading the purge mark"));
  return mark.has_value();
}

absl::Status RocksStore::PurgeDeleted() {
  ASSIGN_OR_RETURN(std::optional<std::string> mark_at_start,
                   Get(meta_cf_, kMetaPurgePendingKey, nullptr, "reading the purge mark"));
  rocksdb::FlushOptions flush;
  flush.wait = true;
  RETURN_IF_ERROR(FromRocks(db_->Flush(flush, handles_), "flushing before a purge"));
  // The flush made the old write-ahead log files obsolete; drop them now rather than later.
  RETURN_IF_ERROR(FromRocks(db_->FlushWAL(/*sync=*/true), "syncing the write-ahead log"));
  rocksdb::CompactRangeOptions compact;
  // Rewrite the last level too: only a compaction that reaches it can drop deleted values.
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  compact.exclusive_manual_compaction = false;  // let automatic compactions run alongside
  for (rocksdb::ColumnFamilyHandle* cf : handles_) {
    RETURN_IF_ERROR(FromRocks(db_->CompactRange(compact, cf, nullptr, nullptr),
                              absl::StrCat("compacting ", cf->GetName(), " to purge deleted data")));
  }
  if (mark_at_start.has_value()) {
    // Clear the mark unless a deletion after the flush above replaced it (DeleteUser holds the
    // gate exclusively while it writes).
    MutexLock gate(&append_gate_);
    ASSIGN_OR_RETURN(std::optional<std::string> mark,
                     Get(meta_cf_, kMetaPurgePendingKey, nullptr, "reading the purge mark"));
    if (mark == mark_at_start) {
      rocksdb::WriteBatch batch;
      batch.Delete(meta_cf_, kMetaPurgePendingKey);
      RETURN_IF_ERROR(Write(batch, "clearing the purge mark"));
    }
  }
  return absl::OkStatus();
}

StoreStats RocksStore::GetStats() const {
  StoreStats stats;
  {
    ReaderMutexLock lock(&mu_);
    stats.num_users = static_cast<uint32_t>(users_.forward.size());
    stats.num_items = static_cast<uint32_t>(items_.forward.size() - deleted_items_.size());
    stats.user_capacity = users_.capacity;
    stats.item_capacity = items_.capacity;
    stats.num_interactions = num_interactions_;
    stats.last_sequence = last_committed_sequence_;
  }
  uint64_t value = 0;
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &value)) {
    stats.disk_bytes = value;
  }
  rocksdb::VectorLogPtr wal_files;
  if (db_->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& file : wal_files) stats.disk_bytes += file->SizeFileBytes();
  }
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
                                    &value)) {
    stats.pending_compaction_bytes = value;
  }
  // STALL_MICROS counts time writers slept in RocksDB's write controller (slowdowns and stops).
  stats.write_stall_micros = statistics_->getTickerCount(rocksdb::STALL_MICROS);
  if (db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &value)) {
    stats.write_stopped = value != 0;
  }
  if (history_cache_ != nullptr) {
    const HistoryCache::Stats cache = history_cache_->GetStats();
    stats.history_cache_hits = cache.hits;
    stats.history_cache_misses = cache.misses;
    stats.history_cache_users = cache.users;
    stats.history_cache_entries = cache.entries;
  }
  return stats;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  return RocksStore::Open(options);
}

}  // namespace recd::storage
