// The durable store of recd: interaction log, per-user history, item catalogue, id maps and
// versioned model snapshots, in one embedded RocksDB database.
//
// Callers never see RocksDB: this header is the whole interface. All methods are thread-safe.
// Write methods return only after the change is durable (WAL fsync'ed) when
// StoreOptions::sync_writes is true (the default).
//
// Concurrency: appends run in parallel with each other (RocksDB group commit) and with every
// reader; DeleteUser briefly excludes appends while it erases; item writers (UpsertItems,
// DeleteItem) are serialised among themselves, and so are model writers (SaveModel, MarkRejected,
// SetLiveVersion, DeleteModelVersion, DeleteUser's row zeroing). Reads never block writers.
#ifndef RECD_STORAGE_STORE_H_
#define RECD_STORAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "core/types.h"

namespace recd::storage {

struct StoreOptions {
  // Folder of the database. Created when missing if create_if_missing.
  std::string path;
  bool create_if_missing = true;
  // fsync the write-ahead log before a write returns. Turning it off is for benchmarks only.
  bool sync_writes = true;
  // RocksDB block cache, bytes.
  size_t block_cache_bytes = size_t{256} << 20;
  // Receives warnings from Open (e.g. unreferenced data files moved aside); may be empty.
  std::function<void(absl::string_view)> warn;
  // Verify every data file's checksums at Open (reads the whole store once): damage becomes a
  // startup error instead of an error on the first request that touches it.
  bool verify_checksums = false;
  // In-memory cache of users' newest history entries. GetUserHistory(user, n) with
  // 0 < n <= history_cache_depth is answered from memory after the user's first read; results
  // are identical to the uncached read. Set the depth to the largest n callers use (the
  // server's --max_history). history_cache_entries bounds the memory in HistoryEntry units
  // (32 bytes each; a cached user also costs about 3 units of bookkeeping); least recently read
  // users are evicted. The default, 4M entries, is about 128 MB. 0 (either) disables the cache.
  size_t history_cache_depth = 2000;
  size_t history_cache_entries = 4'000'000;
};

// An interaction by external ids, already validated by the caller.
using InteractionInput = ExternalInteraction;

struct AppendResult {
  uint32_t accepted = 0;
  uint32_t new_users = 0;
  uint32_t new_items = 0;
  uint64_t first_sequence = 0;  // sequences first_sequence..last_sequence were assigned
  uint64_t last_sequence = 0;
  // Resolved indices, one per input, in input order.
  std::vector<UserIndex> users;
  std::vector<ItemIndex> items;
};

// An item of the catalogue.
struct ItemRecord {
  std::string id;
  ItemIndex index = kNoIndex;  // assigned by the store; ignored on input
  bool active = true;
  bool deleted = false;        // set by DeleteItem; deleted items are never served
  std::vector<std::string> categories;
  std::vector<std::string> tags;
  std::string title;
  int64_t updated_at_ms = 0;
};

struct UpsertResult {
  uint32_t upserted = 0;
  uint32_t created = 0;
  std::vector<ItemIndex> indices;  // one per input, in input order
};

struct DeleteUserResult {
  UserIndex index = kNoIndex;
  uint64_t erased_interactions = 0;
};

// A consistent point-in-time copy of the interaction log plus the catalogue's features.
using TrainingSnapshot = TrainingData;

struct StoreStats {
  uint32_t num_users = 0;           // live user ids
  uint32_t num_items = 0;           // item ids (including inactive, excluding deleted)
  uint32_t user_capacity = 0;       // 1 + highest user index ever assigned
  uint32_t item_capacity = 0;       // 1 + highest item index ever assigned
  uint64_t num_interactions = 0;    // interactions currently in the log
  uint64_t last_sequence = 0;       // highest log sequence ever assigned (0 = none); durable
  uint64_t disk_bytes = 0;          // live SST + WAL bytes
  uint64_t pending_compaction_bytes = 0;
  uint64_t write_stall_micros = 0;  // cumulative time writes were stalled, since Open
  bool write_stopped = false;       // writes currently stopped by RocksDB
  // History cache (StoreOptions::history_cache_entries), since Open: reads answered from memory,
  // reads that went to RocksDB (reads the cache cannot serve count as neither), and the users
  // and history entries it holds now.
  uint64_t history_cache_hits = 0;
  uint64_t history_cache_misses = 0;
  uint64_t history_cache_users = 0;
  uint64_t history_cache_entries = 0;
};

class Store {
 public:
  // Opens (or creates) the store at options.path. Errors are precise and name the path:
  // FailedPrecondition when another process holds the store's lock, PermissionDenied when the
  // folder is not writable, DataLoss when the files are corrupted, FailedPrecondition when the
  // folder holds something that is not a recd store (or a newer, unknown format version).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  virtual ~Store() = default;

  // ---- Id maps (kept in memory, loaded by Open) ----
  // A mapping becomes visible here only once it is durable. Deleted items keep their mapping
  // (their interactions stay); erased users lose theirs, and their index stays a hole forever.
  virtual std::optional<UserIndex> FindUser(absl::string_view user_id) const = 0;
  virtual std::optional<ItemIndex> FindItem(absl::string_view item_id) const = 0;
  // The external id of an index; empty when none (hole or out of range).
  virtual std::string UserId(UserIndex user) const = 0;
  virtual std::string ItemId(ItemIndex item) const = 0;
  // ItemId of each of `items`, in order, under one acquisition of the map's lock (a response's
  // items are named together: one lock instead of one per item).
  virtual std::vector<std::string> ItemIds(absl::Span<const ItemIndex> items) const = 0;

  // ---- Interactions ----
  // Appends the batch atomically (all or nothing), creating unknown users and items (items
  // active, without attributes). Assigns consecutive log sequences in input order.
  // InvalidArgument (naming the entry) for an empty id or an unknown event type. Two concurrent
  // batches that introduce the same new id both resolve it to the same index; new_users /
  // new_items count the ids this call created. A user id that reappears after DeleteUser is a
  // new user with a new index.
  virtual absl::StatusOr<AppendResult> AppendInteractions(
      absl::Span<const InteractionInput> batch) = 0;

  // The user's history, oldest first (in increasing sequence). When max_entries > 0 only the newest max_entries are
  // returned. NotFound is never returned: an unknown user has an empty history. Answered from
  // memory when 0 < max_entries <= StoreOptions::history_cache_depth and the user is cached.
  absl::StatusOr<std::vector<HistoryEntry>> GetUserHistory(UserIndex user, size_t max_entries) const {
    std::vector<HistoryEntry> history;
    if (absl::Status s = GetUserHistory(user, max_entries, &history); !s.ok()) return s;
    return history;
  }
  // The same into *out, replacing its contents: a caller that keeps the vector between calls
  // (the engine, per serving thread) reuses its capacity, so a cached read allocates nothing.
  virtual absl::Status GetUserHistory(UserIndex user, size_t max_entries,
                                      std::vector<HistoryEntry>* out) const = 0;

  // The whole log (interactions of deleted users excluded) as of one consistent point in time,
  // in sequence order, with item features. Never blocks writers.
  // The result is a gap-free prefix of the log: it holds every surviving interaction with
  // sequence <= last_sequence and none above, even while appends commit out of order, so
  // last_sequence can be recorded as ModelMetadata::trained_through_sequence. num_users and
  // num_items are capacities (1 + highest index assigned), holes included.
  virtual absl::StatusOr<TrainingSnapshot> ReadTrainingSnapshot() const = 0;

  // ---- Users ----
  // Erases the user: every interaction (log and history), the id mapping, and the user's row in
  // every stored model version. NotFound for an unknown user.
  // Interactions and mapping go first, in one atomic write that also records the erasure
  // durably; the model rows are zeroed next. If the process dies in between, the next Open (or
  // the next DeleteUser call) finishes the zeroing; a retry for the same id returns NotFound.
  virtual absl::StatusOr<DeleteUserResult> DeleteUser(absl::string_view user_id) = 0;

  // ---- Items ----
  // Creates or replaces items (all or nothing). Replacing keeps the item's index. The input's
  // `index` and `deleted` are ignored: upserting a deleted item restores it. A later duplicate
  // id in the same batch wins. InvalidArgument for an empty id.
  virtual absl::StatusOr<UpsertResult> UpsertItems(absl::Span<const ItemRecord> items) = 0;
  // Marks the item deleted (never served; its interactions stay). NotFound when unknown or
  // already deleted.
  virtual absl::Status DeleteItem(absl::string_view item_id) = 0;
  // Every item that has a record, deleted ones included (with deleted = true), by index. Items
  // created by AppendInteractions are listed as active records without attributes.
  virtual absl::StatusOr<std::vector<ItemRecord>> ListItems() const = 0;
  virtual absl::StatusOr<std::optional<ItemRecord>> GetItem(absl::string_view item_id) const = 0;

  // ---- Models ----
  // Persists a new version of data.meta.name: assigns the next version number (1 for the
  // first), writes it so that a crash leaves either the whole version or none, and returns the
  // number. Does not make it live. Values are stored bit-exactly, non-finite ones included
  // (validation is the loader's job), except that rows of users erased by DeleteUser are
  // stored as zeros. InvalidArgument for a name that is empty, longer than 256 bytes or holds a
  // NUL byte. Version numbers are never reused, even after DeleteModelVersion.
  virtual absl::StatusOr<uint64_t> SaveModel(const ModelData& data) = 0;
  // Loads a stored version. NotFound when absent.
  virtual absl::StatusOr<ModelData> LoadModel(absl::string_view name, uint64_t version) const = 0;
  // Metadata of every stored version of `name`, newest first (empty when none).
  virtual absl::StatusOr<std::vector<ModelMetadata>> ListModelVersions(
      absl::string_view name) const = 0;
  // Names of every model with at least one stored version.
  virtual absl::StatusOr<std::vector<std::string>> ListModelNames() const = 0;
  // Records which version is live (NotFound when that version is not stored).
  virtual absl::Status SetLiveVersion(absl::string_view name, uint64_t version) = 0;
  // The live version of `name`, or nullopt when none was set.
  virtual absl::StatusOr<std::optional<uint64_t>> GetLiveVersion(absl::string_view name) const = 0;
  // Marks a stored version as rejected by the validation gate, with the reason.
  virtual absl::Status MarkRejected(absl::string_view name, uint64_t version,
                                    absl::string_view reason) = 0;
  // Deletes a stored version (never the live one: FailedPrecondition).
  virtual absl::Status DeleteModelVersion(absl::string_view name, uint64_t version) = 0;

  // ---- Operations ----
  // Makes deletions physical: flushes the memtables (so write-ahead log files holding deleted
  // records are dropped) and compacts every column family down to the last level, which drops
  // overwritten and deleted values from the data files. Heavy on large stores: call it after
  // deletions, batched (the server does so a short while after DeleteUser).
  virtual absl::Status PurgeDeleted() = 0;
  // Whether deletions (DeleteUser) have not been purged yet; survives restarts, so a server
  // stopped before its purge schedules it again.
  virtual absl::StatusOr<bool> PurgePending() const = 0;

  // Writes a consistent copy of the whole store to `dir` (must not exist), openable by Open.
  virtual absl::Status CreateCheckpoint(const std::string& dir) = 0;
  // In-memory counters plus RocksDB properties and one listing of the WAL files: cheap enough
  // for a metrics scrape, not meant for every request.
  virtual StoreStats GetStats() const = 0;
};

}  // namespace recd::storage

#endif  // RECD_STORAGE_STORE_H_
