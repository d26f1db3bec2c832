// libFuzzer target: the stored-record encodings (storage/encoding.h).
//
// The first input byte picks a record kind; the rest is used twice:
//  1. as raw stored bytes for that kind's decoder, which must never crash or read out of bounds
//     (ASan), and whose successful results must be self-consistent: re-encoding a decoded
//     record and decoding it again gives the same record (decoders may accept non-canonical
//     varints, so byte equality is not required);
//  2. as the source of a structured record (FuzzedDataProvider) that is encoded and decoded:
//     the result must equal the original, bit for bit for floats and doubles, and encoded keys
//     must sort in the numeric order of their fields.
#include <fuzzer/FuzzedDataProvider.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "storage/encoding.h"

namespace recd::storage {
namespace {

[[noreturn]] void Fail(absl::string_view what) {
  std::fprintf(stderr, "encoding_fuzzer: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

void Check(bool condition, absl::string_view what) {
  if (!condition) Fail(what);
}

// Decoders report every failure as DataLoss.
template <typename T>
void CheckFailure(const absl::StatusOr<T>& s) {
  if (!s.ok()) Check(s.status().code() == absl::StatusCode::kDataLoss, "decoder failure is not DataLoss");
}
void CheckFailure(const absl::Status& s) {
  if (!s.ok()) Check(s.code() == absl::StatusCode::kDataLoss, "decoder failure is not DataLoss");
}

bool SameBits(float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }
bool SameBits(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }

bool Same(const LogRecord& a, const LogRecord& b) {
  return a.user == b.user && a.item == b.item && a.event == b.event && a.has_value == b.has_value &&
         SameBits(a.value, b.value) && a.timestamp_ms == b.timestamp_ms;
}
bool Same(const HistoryEntry& a, const HistoryEntry& b) {
  return a.item == b.item && a.timestamp_ms == b.timestamp_ms && a.sequence == b.sequence &&
         SameBits(a.value, b.value) && a.event == b.event && a.has_value == b.has_value;
}
bool Same(const ItemRecord& a, const ItemRecord& b) {
  return a.id == b.id && a.index == b.index && a.active == b.active && a.deleted == b.deleted &&
         a.categories == b.categories && a.tags == b.tags && a.title == b.title &&
         a.updated_at_ms == b.updated_at_ms;
}
bool Same(const MatrixShape& a, const MatrixShape& b) {
  return a.rows == b.rows && a.cols == b.cols && a.rows_per_chunk == b.rows_per_chunk;
}
bool Same(const ModelManifest& a, const ModelManifest& b) {
  const ModelMetadata& x = a.meta;
  const ModelMetadata& y = b.meta;
  if (x.name != y.name || x.algorithm != y.algorithm || x.version != y.version ||
      x.trained_at_ms != y.trained_at_ms || !SameBits(x.train_seconds, y.train_seconds) ||
      x.num_interactions != y.num_interactions || x.trained_through_sequence != y.trained_through_sequence ||
      x.num_users != y.num_users || x.num_items != y.num_items || x.params != y.params ||
      x.rejected != y.rejected || x.reject_reason != y.reject_reason || x.metrics.size() != y.metrics.size()) {
    return false;
  }
  for (auto i = x.metrics.begin(), j = y.metrics.begin(); i != x.metrics.end(); ++i, ++j) {
    if (i->first != j->first || !SameBits(i->second, j->second)) return false;
  }
  if (!Same(a.user_factors, b.user_factors) || !Same(a.item_factors, b.item_factors) ||
      a.tensor_names != b.tensor_names || a.tensors.size() != b.tensors.size()) {
    return false;
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (!Same(a.tensors[i], b.tensors[i])) return false;
  }
  return true;
}

enum Kind : uint8_t {
  kMarker,
  kFormatVersion,
  kCounter,
  kVersion,
  kLogKey,
  kLogValue,
  kHistoryKey,
  kHistoryValue,
  kItemKey,
  kItemValue,
  kIdKey,
  kIndexValue,
  kIdValue,
  kErasedUser,
  kModelKey,
  kManifest,
  kChunk,
  kPrimitives,
  kNumKinds,
};

// ---- 1. Arbitrary bytes through the decoders --------------------------------------------------

void DecodeRaw(Kind kind, absl::string_view in) {
  switch (kind) {
    case kMarker:
      CheckFailure(DecodeMarkerValue(in));
      if (DecodeMarkerValue(in).ok()) Check(in == EncodeMarkerValue(), "foreign marker accepted");
      break;
    case kFormatVersion: {
      auto v = DecodeFormatVersionValue(in);
      CheckFailure(v);
      if (v.ok()) Check(*DecodeFormatVersionValue(EncodeFormatVersionValue(*v)) == *v, "format version");
      break;
    }
    case kCounter: {
      auto c = DecodeCounter(in);
      CheckFailure(c);
      if (!c.ok()) break;
      auto again = DecodeCounter(EncodeCounter(*c));
      Check(again.ok() && again->op == c->op && again->value == c->value, "counter re-encoding");
      // Merging with itself: add doubles (wrapping), max is idempotent; never UB.
      auto merged = CombineCounters(*c, *c);
      Check(merged.ok(), "counter merge with itself failed");
      if (c->op == CounterOp::kMax) Check(merged->value == c->value, "max merge not idempotent");
      break;
    }
    case kVersion: {
      auto v = DecodeVersionValue(in);
      CheckFailure(v);
      if (v.ok()) Check(*DecodeVersionValue(EncodeVersionValue(*v)) == *v, "version re-encoding");
      break;
    }
    case kLogKey: {
      auto seq = DecodeLogKey(in);
      CheckFailure(seq);
      if (seq.ok()) Check(LogKey(*seq) == in, "log key is not canonical");
      break;
    }
    case kLogValue: {
      auto r = DecodeLogValue(in);
      CheckFailure(r);
      if (!r.ok()) break;
      auto again = DecodeLogValue(EncodeLogValue(*r));
      Check(again.ok() && Same(*again, *r), "log record re-encoding");
      break;
    }
    case kHistoryKey: {
      auto k = DecodeHistoryKey(in);
      CheckFailure(k);
      if (k.ok()) Check(HistoryKey(k->user, k->sequence) == in, "history key is not canonical");
      break;
    }
    case kHistoryValue: {
      auto e = DecodeHistoryValue(in, 77);
      CheckFailure(e);
      if (!e.ok()) break;
      Check(e->sequence == 77, "history sequence not taken from the key");
      auto again = DecodeHistoryValue(EncodeHistoryValue(*e), 77);
      Check(again.ok() && Same(*again, *e), "history entry re-encoding");
      break;
    }
    case kItemKey: {
      auto k = DecodeItemKey(in);
      CheckFailure(k);
      if (k.ok()) Check(ItemKey(*k) == in, "item key is not canonical");
      break;
    }
    case kItemValue: {
      auto r = DecodeItemValue(in, 5);
      CheckFailure(r);
      if (!r.ok()) break;
      Check(r->index == 5, "item index not taken from the key");
      auto again = DecodeItemValue(EncodeItemValue(*r), 5);
      Check(again.ok() && Same(*again, *r), "item record re-encoding");
      break;
    }
    case kIdKey: {
      auto k = DecodeIdKey(in);
      CheckFailure(k);
      if (!k.ok()) break;
      std::string key;
      switch (k->kind) {
        case IdKeyKind::kUserId: key = UserIdKey(k->id); break;
        case IdKeyKind::kItemId: key = ItemIdKey(k->id); break;
        case IdKeyKind::kUserIndex: key = UserIndexKey(k->index); break;
        case IdKeyKind::kItemIndex: key = ItemIndexKey(k->index); break;
        case IdKeyKind::kErasedUser: key = ErasedUserKey(k->index); break;
      }
      Check(key == in, "id key is not canonical");
      break;
    }
    case kIndexValue: {
      auto v = DecodeIndexValue(in);
      CheckFailure(v);
      if (v.ok()) Check(*v != kNoIndex && *DecodeIndexValue(EncodeIndexValue(*v)) == *v, "index value");
      break;
    }
    case kIdValue: {
      auto v = DecodeIdValue(in);
      CheckFailure(v);
      if (v.ok()) Check(!v->empty() && *DecodeIdValue(EncodeIdValue(*v)) == *v, "id value");
      break;
    }
    case kErasedUser: {
      auto v = DecodeErasedUserValue(in);
      CheckFailure(v);
      if (v.ok()) Check(*DecodeErasedUserValue(EncodeErasedUserValue(*v)) == *v, "erased user value");
      break;
    }
    case kModelKey: {
      auto k = DecodeModelKey(in);
      CheckFailure(k);
      if (!k.ok()) break;
      const std::string key = k->part == ModelKeyPart::kManifest
                                  ? ModelManifestKey(k->name, k->version)
                                  : ModelChunkKey(k->name, k->version, k->matrix, k->chunk);
      Check(key == in, "model key is not canonical");
      break;
    }
    case kManifest: {
      auto m = DecodeManifest(in);
      CheckFailure(m);
      if (!m.ok()) break;
      for (const MatrixShape* s : {&m->user_factors, &m->item_factors}) {
        Check(s->rows <= kMaxMatrixRows && s->cols <= kMaxMatrixCols && s->rows_per_chunk > 0,
              "implausible shape accepted");
        (void)s->num_chunks();
      }
      Check(m->tensor_names.size() == m->tensors.size(), "tensor lists differ in length");
      auto again = DecodeManifest(EncodeManifest(*m));
      Check(again.ok() && Same(*again, *m), "manifest re-encoding");
      break;
    }
    case kChunk: {
      auto c = DecodeChunk(in);
      CheckFailure(c);
      if (!c.ok()) break;
      // The view must hold exactly rows * cols floats (computed without overflow), so that
      // CopyTo into a buffer of that size stays in bounds.
      const unsigned __int128 floats = static_cast<unsigned __int128>(c->rows) * c->cols;
      Check(floats * 4 == c->data.size(), "chunk view size differs from rows * cols");
      std::vector<float> out(static_cast<size_t>(floats));
      c->CopyTo(out.data());
      const std::string encoded = EncodeChunk(c->first_row, c->rows, c->cols, out.data());
      auto again = DecodeChunk(encoded);  // a view into `encoded`
      Check(again.ok() && again->first_row == c->first_row && again->rows == c->rows &&
                again->cols == c->cols && again->data == c->data,
            "chunk re-encoding");
      break;
    }
    case kPrimitives: {
      // Every getter on the same stream, in a data-driven order, until the input runs out.
      Decoder d(in);
      size_t before = d.remaining();
      for (int step = 0; !d.done() && step < 64; ++step) {
        uint8_t op = 0;
        if (!d.GetU8(&op)) break;
        uint8_t u8; uint32_t u32; uint64_t u64; int64_t i64; float f; double x; absl::string_view v;
        bool ok = false;
        switch (op % 11) {
          case 0: ok = d.GetU8(&u8); break;
          case 1: ok = d.GetFixed32BE(&u32); break;
          case 2: ok = d.GetFixed64BE(&u64); break;
          case 3: ok = d.GetFixed32LE(&u32); break;
          case 4: ok = d.GetFixed64LE(&u64); break;
          case 5: ok = d.GetFloat(&f); break;
          case 6: ok = d.GetDouble(&x); break;
          case 7: ok = d.GetVarint32(&u32); break;
          case 8: ok = d.GetVarint64(&u64); break;
          case 9: ok = d.GetVarsint64(&i64); break;
          case 10: ok = d.GetLengthPrefixed(&v); break;
        }
        Check(d.remaining() < before, "a getter consumed nothing");
        before = d.remaining();
        if (!ok) break;
      }
      break;
    }
    case kNumKinds:
      break;
  }
}

// ---- 2. Structured records: encode, decode, compare -------------------------------------------

uint32_t Index(FuzzedDataProvider& p) {
  const uint32_t v = p.ConsumeIntegral<uint32_t>();
  return v == kNoIndex ? 0 : v;
}
EventType Event(FuzzedDataProvider& p) {
  return static_cast<EventType>(p.ConsumeIntegralInRange<int>(1, kMaxEventType));
}
float AnyFloat(FuzzedDataProvider& p) { return std::bit_cast<float>(p.ConsumeIntegral<uint32_t>()); }
double AnyDouble(FuzzedDataProvider& p) { return std::bit_cast<double>(p.ConsumeIntegral<uint64_t>()); }
std::string Bytes(FuzzedDataProvider& p, size_t max) { return p.ConsumeRandomLengthString(max); }
std::vector<std::string> StringList(FuzzedDataProvider& p) {
  std::vector<std::string> out(p.ConsumeIntegralInRange<size_t>(0, 4));
  for (std::string& s : out) s = Bytes(p, 16);
  return out;
}
MatrixShape Shape(FuzzedDataProvider& p) {
  MatrixShape s;
  s.rows = p.ConsumeIntegralInRange<uint64_t>(0, kMaxMatrixRows);
  s.cols = p.ConsumeIntegralInRange<uint64_t>(0, kMaxMatrixCols);
  if (s.rows * s.cols > kMaxMatrixValues) s.rows = kMaxMatrixValues / std::max<uint64_t>(1, s.cols);
  s.rows_per_chunk = p.ConsumeIntegralInRange<uint32_t>(1, UINT32_MAX);
  return s;
}

void RoundTrip(Kind kind, FuzzedDataProvider& p) {
  switch (kind) {
    case kCounter: {
      Counter c{p.ConsumeBool() ? CounterOp::kAdd : CounterOp::kMax, p.ConsumeIntegral<int64_t>()};
      auto out = DecodeCounter(EncodeCounter(c));
      Check(out.ok() && out->op == c.op && out->value == c.value, "counter round trip");
      break;
    }
    case kFormatVersion: {
      const uint32_t v = p.ConsumeIntegral<uint32_t>();
      auto out = DecodeFormatVersionValue(EncodeFormatVersionValue(v));
      Check(out.ok() && *out == v, "format version round trip");
      break;
    }
    case kVersion: {
      const uint64_t v = p.ConsumeIntegral<uint64_t>();
      auto out = DecodeVersionValue(EncodeVersionValue(v));
      Check(out.ok() && *out == v, "version round trip");
      break;
    }
    case kLogKey: {
      const uint64_t a = p.ConsumeIntegral<uint64_t>(), b = p.ConsumeIntegral<uint64_t>();
      Check(*DecodeLogKey(LogKey(a)) == a, "log key round trip");
      Check((a < b) == (LogKey(a) < LogKey(b)), "log keys do not sort by sequence");
      break;
    }
    case kLogValue: {
      LogRecord r;
      r.user = Index(p);
      r.item = Index(p);
      r.event = Event(p);
      r.has_value = p.ConsumeBool();
      r.value = AnyFloat(p);
      r.timestamp_ms = p.ConsumeIntegral<int64_t>();
      auto out = DecodeLogValue(EncodeLogValue(r));
      Check(out.ok() && Same(*out, r), "log record round trip");
      break;
    }
    case kHistoryKey: {
      const uint32_t u1 = p.ConsumeIntegral<uint32_t>(), u2 = p.ConsumeIntegral<uint32_t>();
      const uint64_t s1 = p.ConsumeIntegral<uint64_t>(), s2 = p.ConsumeIntegral<uint64_t>();
      auto parts = DecodeHistoryKey(HistoryKey(u1, s1));
      Check(parts.ok() && parts->user == u1 && parts->sequence == s1, "history key round trip");
      Check((std::pair(u1, s1) < std::pair(u2, s2)) == (HistoryKey(u1, s1) < HistoryKey(u2, s2)),
            "history keys do not sort by (user, sequence)");
      Check(absl::string_view(HistoryKey(u1, s1)).substr(0, kHistoryPrefixSize) == HistoryPrefix(u1),
            "history key does not start with its prefix");
      break;
    }
    case kHistoryValue: {
      HistoryEntry e;
      e.item = Index(p);
      e.timestamp_ms = p.ConsumeIntegral<int64_t>();
      e.sequence = p.ConsumeIntegral<uint64_t>();
      e.value = AnyFloat(p);
      e.event = Event(p);
      e.has_value = p.ConsumeBool();
      auto out = DecodeHistoryValue(EncodeHistoryValue(e), e.sequence);
      Check(out.ok() && Same(*out, e), "history entry round trip");
      break;
    }
    case kItemKey: {
      const uint32_t a = p.ConsumeIntegral<uint32_t>(), b = p.ConsumeIntegral<uint32_t>();
      Check(*DecodeItemKey(ItemKey(a)) == a, "item key round trip");
      Check((a < b) == (ItemKey(a) < ItemKey(b)), "item keys do not sort by index");
      break;
    }
    case kItemValue: {
      ItemRecord r;
      r.index = p.ConsumeIntegral<uint32_t>();
      r.active = p.ConsumeBool();
      r.deleted = p.ConsumeBool();
      r.categories = StringList(p);
      r.tags = StringList(p);
      r.id = Bytes(p, 300);
      r.title = Bytes(p, 1100);
      r.updated_at_ms = p.ConsumeIntegral<int64_t>();
      auto out = DecodeItemValue(EncodeItemValue(r), r.index);
      Check(out.ok() && Same(*out, r), "item record round trip");
      break;
    }
    case kIdKey: {
      const uint32_t index = p.ConsumeIntegral<uint32_t>();
      const std::string id = Bytes(p, 300);
      if (index != kNoIndex) {
        for (const std::string& key : {UserIndexKey(index), ItemIndexKey(index), ErasedUserKey(index)}) {
          auto parts = DecodeIdKey(key);
          Check(parts.ok() && parts->index == index, "index key round trip");
        }
      }
      if (!id.empty()) {
        // The decoded id is a view into the key: keep the keys alive.
        const std::string user_key = UserIdKey(id), item_key = ItemIdKey(id);
        auto user = DecodeIdKey(user_key);
        auto item = DecodeIdKey(item_key);
        Check(user.ok() && user->kind == IdKeyKind::kUserId && user->id == id, "user id key round trip");
        Check(item.ok() && item->kind == IdKeyKind::kItemId && item->id == id, "item id key round trip");
      }
      break;
    }
    case kIndexValue: {
      const uint32_t v = Index(p);
      Check(*DecodeIndexValue(EncodeIndexValue(v)) == v, "index value round trip");
      break;
    }
    case kIdValue: {
      std::string id = Bytes(p, 300);
      if (id.empty()) id = "x";
      auto out = DecodeIdValue(EncodeIdValue(id));
      Check(out.ok() && *out == id, "id value round trip");
      break;
    }
    case kErasedUser: {
      const bool v = p.ConsumeBool();
      Check(*DecodeErasedUserValue(EncodeErasedUserValue(v)) == v, "erased user round trip");
      break;
    }
    case kModelKey: {
      std::string name = Bytes(p, 40);
      for (char& c : name) {
        if (c == '\0') c = 'n';
      }
      if (name.empty()) name = "m";
      const uint64_t v1 = p.ConsumeIntegral<uint64_t>(), v2 = p.ConsumeIntegral<uint64_t>();
      const uint32_t matrix = p.ConsumeIntegral<uint32_t>(), chunk = p.ConsumeIntegral<uint32_t>();
      Check(ValidateModelName(name).ok() == (name.size() <= kMaxModelNameBytes), "model name check");
      const std::string manifest_key = ModelManifestKey(name, v1);
      const std::string chunk_key = ModelChunkKey(name, v1, matrix, chunk);
      auto manifest = DecodeModelKey(manifest_key);
      Check(manifest.ok() && manifest->name == name && manifest->version == v1 &&
                manifest->part == ModelKeyPart::kManifest,
            "manifest key round trip");
      auto c = DecodeModelKey(chunk_key);
      Check(c.ok() && c->name == name && c->version == v1 && c->part == ModelKeyPart::kChunk &&
                c->matrix == matrix && c->chunk == chunk,
            "chunk key round trip");
      // A version's manifest sorts before its chunks and after every key of older versions.
      Check(ModelManifestKey(name, v1) < ModelChunkKey(name, v1, matrix, chunk), "manifest after chunk");
      Check((v1 < v2) == (ModelManifestKey(name, v1) < ModelManifestKey(name, v2)),
            "versions do not sort numerically");
      if (v1 < v2) Check(ModelChunkKey(name, v1, matrix, chunk) < ModelManifestKey(name, v2), "version interleave");
      Check(absl::string_view(ModelChunkKey(name, v1, matrix, chunk)).substr(0, name.size() + 1) ==
                ModelNamePrefix(name),
            "model key does not start with its name prefix");
      break;
    }
    case kManifest: {
      ModelManifest m;
      m.meta.name = Bytes(p, 40);
      m.meta.algorithm = Bytes(p, 20);
      m.meta.version = p.ConsumeIntegral<uint64_t>();
      m.meta.trained_at_ms = p.ConsumeIntegral<int64_t>();
      m.meta.train_seconds = AnyDouble(p);
      m.meta.num_interactions = p.ConsumeIntegral<uint64_t>();
      m.meta.trained_through_sequence = p.ConsumeIntegral<uint64_t>();
      m.meta.num_users = p.ConsumeIntegral<uint32_t>();
      m.meta.num_items = p.ConsumeIntegral<uint32_t>();
      for (int i = p.ConsumeIntegralInRange(0, 3); i > 0; --i) m.meta.metrics[Bytes(p, 12)] = AnyDouble(p);
      for (int i = p.ConsumeIntegralInRange(0, 3); i > 0; --i) m.meta.params[Bytes(p, 12)] = Bytes(p, 12);
      m.meta.rejected = p.ConsumeBool();
      m.meta.reject_reason = Bytes(p, 40);
      m.user_factors = Shape(p);
      m.item_factors = Shape(p);
      std::map<std::string, MatrixShape> tensors;
      for (int i = p.ConsumeIntegralInRange(0, 3); i > 0; --i) tensors[Bytes(p, 12)] = Shape(p);
      for (const auto& [name, shape] : tensors) {
        m.tensor_names.push_back(name);
        m.tensors.push_back(shape);
      }
      auto out = DecodeManifest(EncodeManifest(m));
      Check(out.ok() && Same(*out, m), "manifest round trip");
      break;
    }
    case kChunk: {
      const uint64_t first_row = p.ConsumeIntegral<uint64_t>();
      const uint32_t rows = p.ConsumeIntegralInRange<uint32_t>(0, 16);
      const uint32_t cols = p.ConsumeIntegralInRange<uint32_t>(0, 16);
      std::vector<float> values(static_cast<size_t>(rows) * cols);
      for (float& v : values) v = AnyFloat(p);
      const std::string encoded = EncodeChunk(first_row, rows, cols, values.data());
      auto out = DecodeChunk(encoded);  // a view into `encoded`
      Check(out.ok() && out->first_row == first_row && out->rows == rows && out->cols == cols, "chunk round trip");
      std::vector<float> copy(values.size());
      out->CopyTo(copy.data());
      for (size_t i = 0; i < values.size(); ++i) Check(SameBits(copy[i], values[i]), "chunk values differ");
      break;
    }
    case kPrimitives: {
      const uint64_t u = p.ConsumeIntegral<uint64_t>();
      const int64_t s = p.ConsumeIntegral<int64_t>();
      const uint32_t u32 = p.ConsumeIntegral<uint32_t>();
      const std::string bytes = Bytes(p, 64);
      std::string buf;
      PutVarint64(&buf, u);
      PutVarsint64(&buf, s);
      PutVarint32(&buf, u32);
      PutFixed32BE(&buf, u32);
      PutFixed64BE(&buf, u);
      PutFixed32LE(&buf, u32);
      PutFixed64LE(&buf, u);
      PutLengthPrefixed(&buf, bytes);
      Decoder d(buf);
      uint64_t u_out, u64_be, u64_le;
      int64_t s_out;
      uint32_t u32_out, u32_be, u32_le;
      absl::string_view bytes_out;
      Check(d.GetVarint64(&u_out) && d.GetVarsint64(&s_out) && d.GetVarint32(&u32_out) &&
                d.GetFixed32BE(&u32_be) && d.GetFixed64BE(&u64_be) && d.GetFixed32LE(&u32_le) &&
                d.GetFixed64LE(&u64_le) && d.GetLengthPrefixed(&bytes_out) && d.done(),
            "primitives do not decode");
      Check(u_out == u && s_out == s && u32_out == u32 && u32_be == u32 && u64_be == u && u32_le == u32 &&
                u64_le == u && bytes_out == bytes,
            "primitives round trip");
      break;
    }
    case kMarker:
    case kNumKinds:
      break;
  }
}

}  // namespace
}  // namespace recd::storage

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recd::storage;
  if (size == 0) return 0;
  const Kind kind = static_cast<Kind>(data[0] % kNumKinds);
  const absl::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  DecodeRaw(kind, rest);
  FuzzedDataProvider provider(data + 1, size - 1);
  RoundTrip(kind, provider);
  return 0;
}
