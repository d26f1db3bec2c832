#include "storage/encoding.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd::storage {
namespace {

using ::testing::HasSubstr;

TEST(PrimitivesTest, VarintsRoundTripAtBoundaries) {
  const std::vector<uint64_t> values = {0,           1,          127,        128,
                                        16383,       16384,      (1u << 21), 0xffffffffu,
                                        1ull << 35,  1ull << 63, ~0ull};
  for (uint64_t v : values) {
    std::string s;
    PutVarint64(&s, v);
    Decoder in(s);
    uint64_t out;
    ASSERT_TRUE(in.GetVarint64(&out)) << v;
    EXPECT_EQ(out, v);
    EXPECT_TRUE(in.done());
  }
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max(), int64_t{-1700000000000}}) {
    std::string s;
    PutVarsint64(&s, v);
    Decoder in(s);
    int64_t out;
    ASSERT_TRUE(in.GetVarsint64(&out)) << v;
    EXPECT_EQ(out, v);
  }
}

TEST(PrimitivesTest, Varint32RejectsWideValuesAndOverlongEncodings) {
  std::string s;
  PutVarint64(&s, uint64_t{1} << 32);
  Decoder in(s);
  uint32_t v32;
  EXPECT_FALSE(in.GetVarint32(&v32));
  EXPECT_EQ(in.remaining(), s.size());  // nothing consumed on failure

  std::string overlong(11, '\x80');
  overlong.back() = '\x01';
  Decoder in64(overlong);
  uint64_t v64;
  EXPECT_FALSE(in64.GetVarint64(&v64));
  // Tenth byte above 1 would overflow 64 bits.
  std::string overflow(9, '\xff');
  overflow.push_back('\x02');
  Decoder in_overflow(overflow);
  EXPECT_FALSE(in_overflow.GetVarint64(&v64));
}

TEST(PrimitivesTest, BigEndianKeysSortNumerically) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t a = rng(), b = rng() >> (rng() % 64);
    EXPECT_EQ(LogKey(a) < LogKey(b), a < b);
    const auto ua = static_cast<uint32_t>(a), ub = static_cast<uint32_t>(b);
    EXPECT_EQ(HistoryKey(ua, b) < HistoryKey(ub, a), ua < ub || (ua == ub && b < a));
  }
}

TEST(PrimitivesTest, FloatsKeepTheirBits) {
  const float nan_payload = std::bit_cast<float>(uint32_t{0x7fc12345});
  for (float f : {0.0f, -0.0f, 1.5f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), nan_payload,
                  std::numeric_limits<float>::denorm_min()}) {
    std::string s;
    PutFloat(&s, f);
    ASSERT_EQ(s.size(), 4u);
    Decoder in(s);
    float out;
    ASSERT_TRUE(in.GetFloat(&out));
    EXPECT_EQ(std::bit_cast<uint32_t>(out), std::bit_cast<uint32_t>(f));
  }
  std::string one;
  PutFloat(&one, 1.0f);
  EXPECT_EQ(one, std::string("\x00\x00\x80\x3f", 4));  // little-endian on every host
}

TEST(RecordsTest, LogRoundTrip) {
  LogRecord r{12, 345678, EventType::kRating, true, 4.5f, -42};
  absl::StatusOr<LogRecord> out = DecodeLogValue(EncodeLogValue(r));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->user, r.user);
  EXPECT_EQ(out->item, r.item);
  EXPECT_EQ(out->event, r.event);
  EXPECT_EQ(out->has_value, r.has_value);
  EXPECT_EQ(out->value, r.value);
  EXPECT_EQ(out->timestamp_ms, r.timestamp_ms);
  ASSERT_TRUE(DecodeLogKey(LogKey(99)).ok());
  EXPECT_EQ(*DecodeLogKey(LogKey(99)), 99u);
  EXPECT_FALSE(DecodeLogKey("short").ok());
}

TEST(RecordsTest, HistoryRoundTrip) {
  HistoryEntry e;
  e.item = 7;
  e.timestamp_ms = 1700000000123;
  e.value = -1.25f;
  e.event = EventType::kPurchase;
  e.has_value = true;
  absl::StatusOr<HistoryEntry> out = DecodeHistoryValue(EncodeHistoryValue(e), 55);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->item, 7u);
  EXPECT_EQ(out->sequence, 55u);
  EXPECT_EQ(out->timestamp_ms, e.timestamp_ms);
  EXPECT_EQ(out->value, e.value);
  EXPECT_EQ(out->event, e.event);
  EXPECT_TRUE(out->has_value);
  absl::StatusOr<HistoryKeyParts> key = DecodeHistoryKey(HistoryKey(3, 1ull << 40));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->user, 3u);
  EXPECT_EQ(key->sequence, 1ull << 40);
}

TEST(RecordsTest, ItemRoundTrip) {
  ItemRecord r;
  r.id = "sku-1";
  r.active = false;
  r.deleted = true;
  r.categories = {"books", "", "sci-fi"};
  r.tags = {"new"};
  r.title = std::string("t\0itle", 6);
  r.updated_at_ms = -5;
  absl::StatusOr<ItemRecord> out = DecodeItemValue(EncodeItemValue(r), 9);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->id, r.id);
  EXPECT_EQ(out->index, 9u);
  EXPECT_EQ(out->active, r.active);
  EXPECT_EQ(out->deleted, r.deleted);
  EXPECT_EQ(out->categories, r.categories);
  EXPECT_EQ(out->tags, r.tags);
  EXPECT_EQ(out->title, r.title);
  EXPECT_EQ(out->updated_at_ms, r.updated_at_ms);
}

TEST(RecordsTest, IdKeysAndValues) {
  const std::string alice = UserIdKey("alice");  // parts are views into the key
  absl::StatusOr<IdKeyParts> k = DecodeIdKey(alice);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->kind, IdKeyKind::kUserId);
  EXPECT_EQ(k->id, "alice");
  k = DecodeIdKey(ItemIndexKey(77));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->kind, IdKeyKind::kItemIndex);
  EXPECT_EQ(k->index, 77u);
  k = DecodeIdKey(ErasedUserKey(5));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->kind, IdKeyKind::kErasedUser);
  EXPECT_FALSE(DecodeIdKey("").ok());
  EXPECT_FALSE(DecodeIdKey("u").ok());
  EXPECT_FALSE(DecodeIdKey("U12").ok());
  EXPECT_FALSE(DecodeIdKey("zzz").ok());

  EXPECT_EQ(*DecodeIndexValue(EncodeIndexValue(123456)), 123456u);
  EXPECT_EQ(*DecodeIdValue(EncodeIdValue("bob")), "bob");
  EXPECT_TRUE(*DecodeErasedUserValue(EncodeErasedUserValue(true)));
  EXPECT_FALSE(*DecodeErasedUserValue(EncodeErasedUserValue(false)));
}

TEST(RecordsTest, CountersCombine) {
  absl::StatusOr<Counter> c = DecodeCounter(EncodeCounter({CounterOp::kAdd, -3}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->op, CounterOp::kAdd);
  EXPECT_EQ(c->value, -3);
  EXPECT_EQ(CombineCounters({CounterOp::kAdd, 5}, {CounterOp::kAdd, -3})->value, 2);
  EXPECT_EQ(CombineCounters({CounterOp::kMax, 5}, {CounterOp::kMax, 3})->value, 5);
  EXPECT_EQ(CombineCounters({CounterOp::kMax, 5}, {CounterOp::kMax, 9})->value, 9);
  EXPECT_FALSE(CombineCounters({CounterOp::kMax, 5}, {CounterOp::kAdd, 9}).ok());
}

TEST(RecordsTest, MarkerAndFormat) {
  EXPECT_TRUE(DecodeMarkerValue(EncodeMarkerValue()).ok());
  EXPECT_FALSE(DecodeMarkerValue("\x01something").ok());
  EXPECT_EQ(*DecodeFormatVersionValue(EncodeFormatVersionValue(3)), 3u);
  EXPECT_EQ(*DecodeVersionValue(EncodeVersionValue(1ull << 50)), 1ull << 50);
}

ModelManifest SampleManifest() {
  ModelManifest m;
  m.meta.name = "pure_svd";
  m.meta.algorithm = "pure_svd";
  m.meta.version = 4;
  m.meta.trained_at_ms = 1700000000000;
  m.meta.train_seconds = 1.0 / 3.0;
  m.meta.num_interactions = 1234;
  m.meta.trained_through_sequence = 999;
  m.meta.num_users = 10;
  m.meta.num_items = 20;
  m.meta.metrics = {{"train_loss", 0.125}, {"ndcg@10", std::nan("")}};
  m.meta.params = {{"dim", "64"}, {"reg", "0.01"}};
  m.meta.rejected = true;
  m.meta.reject_reason = "too slow";
  m.user_factors = {10, 64, RowsPerChunk(64)};
  m.item_factors = {20, 64, RowsPerChunk(64)};
  m.tensor_names = {"bias", "w"};
  m.tensors = {{20, 1, RowsPerChunk(1)}, {0, 0, RowsPerChunk(0)}};
  return m;
}

TEST(RecordsTest, ManifestRoundTrip) {
  const ModelManifest m = SampleManifest();
  absl::StatusOr<ModelManifest> out = DecodeManifest(EncodeManifest(m));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->meta.name, m.meta.name);
  EXPECT_EQ(out->meta.algorithm, m.meta.algorithm);
  EXPECT_EQ(out->meta.version, m.meta.version);
  EXPECT_EQ(out->meta.trained_at_ms, m.meta.trained_at_ms);
  EXPECT_EQ(out->meta.train_seconds, m.meta.train_seconds);
  EXPECT_EQ(out->meta.num_interactions, m.meta.num_interactions);
  EXPECT_EQ(out->meta.trained_through_sequence, m.meta.trained_through_sequence);
  EXPECT_EQ(out->meta.num_users, m.meta.num_users);
  EXPECT_EQ(out->meta.num_items, m.meta.num_items);
  EXPECT_EQ(out->meta.metrics.at("train_loss"), 0.125);
  EXPECT_TRUE(std::isnan(out->meta.metrics.at("ndcg@10")));
  EXPECT_EQ(out->meta.params, m.meta.params);
  EXPECT_TRUE(out->meta.rejected);
  EXPECT_EQ(out->meta.reject_reason, m.meta.reject_reason);
  EXPECT_EQ(out->user_factors.rows, 10u);
  EXPECT_EQ(out->user_factors.cols, 64u);
  EXPECT_EQ(out->tensor_names, m.tensor_names);
  EXPECT_EQ(out->tensors[0].rows, 20u);
  EXPECT_EQ(out->tensors[1].num_chunks(), 0u);
}

TEST(RecordsTest, ChunkRoundTripAndShapeCheck) {
  std::vector<float> values = {1, 2, 3, -0.0f, std::numeric_limits<float>::quiet_NaN(), 6};
  std::string enc = EncodeChunk(8192, 2, 3, values.data());
  absl::StatusOr<ChunkView> view = DecodeChunk(enc);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->first_row, 8192u);
  EXPECT_EQ(view->rows, 2u);
  EXPECT_EQ(view->cols, 3u);
  std::vector<float> out(6);
  view->CopyTo(out.data());
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(values[i]));
  }
  EXPECT_FALSE(DecodeChunk(enc + "x").ok());
  EXPECT_FALSE(DecodeChunk(enc.substr(0, enc.size() - 1)).ok());
}

// Regression (fuzz/encoding_fuzzer, UBSan): an empty chunk copies nothing and never hands
// memcpy a null pointer, which an empty vector's data() may be.
TEST(RecordsTest, EmptyChunkCopiesNothing) {
  const std::string enc = EncodeChunk(0, 0, 7, nullptr);
  absl::StatusOr<ChunkView> view = DecodeChunk(enc);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->rows, 0u);
  std::vector<float> none;
  view->CopyTo(none.data());
}

TEST(RecordsTest, ModelKeys) {
  EXPECT_TRUE(ValidateModelName("als").ok());
  EXPECT_FALSE(ValidateModelName("").ok());
  EXPECT_FALSE(ValidateModelName(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateModelName(std::string(300, 'x')).ok());

  const std::string chunk_key = ModelChunkKey("m/1", 7, 2, 9);  // parts are views into it
  absl::StatusOr<ModelKeyParts> k = DecodeModelKey(chunk_key);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->name, "m/1");
  EXPECT_EQ(k->version, 7u);
  EXPECT_EQ(k->part, ModelKeyPart::kChunk);
  EXPECT_EQ(k->matrix, 2u);
  EXPECT_EQ(k->chunk, 9u);
  const std::string manifest_key = ModelManifestKey("m", 1);
  k = DecodeModelKey(manifest_key);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->part, ModelKeyPart::kManifest);
  // The manifest sorts before every chunk of its version, and versions sort numerically.
  EXPECT_LT(ModelManifestKey("m", 1), ModelChunkKey("m", 1, 0, 0));
  EXPECT_LT(ModelChunkKey("m", 1, 5, 5), ModelManifestKey("m", 2));
  EXPECT_LT(ModelChunkKey("m", 255, 0, 0), ModelManifestKey("m", 256));
  // Another name that extends this one never interleaves with its versions.
  EXPECT_LT(ModelChunkKey("m", ~0ull, 9, 9), ModelManifestKey("m2", 0));
}

TEST(RecordsTest, RowsPerChunkIsBounded) {
  EXPECT_EQ(RowsPerChunk(64), 4096u);
  EXPECT_EQ(RowsPerChunk(1), 4096u);
  EXPECT_EQ(RowsPerChunk(1024), 256u);
  EXPECT_EQ(RowsPerChunk(1u << 20), 1u);
  EXPECT_LE(uint64_t{RowsPerChunk(300)} * 300 * 4, uint64_t{1} << 20);
}

TEST(RecordsTest, UnknownVersionIsDataLossNamingTheKind) {
  std::string v = EncodeLogValue(LogRecord{1, 2, EventType::kView, false, 0, 0});
  v[0] = 2;
  absl::StatusOr<LogRecord> out = DecodeLogValue(v);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(out.status().message(), HasSubstr("log record"));
  EXPECT_THAT(out.status().message(), HasSubstr("version 2"));

  std::string item = EncodeItemValue(ItemRecord{});
  item[0] = 0;
  EXPECT_THAT(DecodeItemValue(item, 0).status().message(), HasSubstr("item record"));
}

TEST(RecordsTest, BadEventAndFlagsAreRejected) {
  std::string v = EncodeLogValue(LogRecord{1, 2, EventType::kView, false, 0, 0});
  // Layout: version, user varint, item varint, event, flags, ...
  std::string bad_event = v;
  bad_event[3] = 0;
  EXPECT_EQ(DecodeLogValue(bad_event).status().code(), absl::StatusCode::kDataLoss);
  std::string bad_flags = v;
  bad_flags[4] = 0x40;
  EXPECT_EQ(DecodeLogValue(bad_flags).status().code(), absl::StatusCode::kDataLoss);
}

// Every decoder, fed any proper prefix of a valid value, fails with DataLoss.
TEST(GarbageTest, TruncationsAreDataLoss) {
  const std::vector<float> floats(12, 0.5f);
  ItemRecord item;
  item.id = "x";
  item.categories = {"a", "b"};
  item.tags = {"t"};
  item.title = "title";
  HistoryEntry entry;
  entry.item = 3;
  struct Case {
    std::string name;
    std::string value;
    std::function<absl::Status(absl::string_view)> decode;
  };
  const std::vector<Case> cases = {
      {"log", EncodeLogValue(LogRecord{300, 70000, EventType::kClick, true, 1.0f, 123456789}),
       [](absl::string_view v) { return DecodeLogValue(v).status(); }},
      {"history", EncodeHistoryValue(entry),
       [](absl::string_view v) { return DecodeHistoryValue(v, 1).status(); }},
      {"item", EncodeItemValue(item),
       [](absl::string_view v) { return DecodeItemValue(v, 1).status(); }},
      {"index", EncodeIndexValue(1u << 30),
       [](absl::string_view v) { return DecodeIndexValue(v).status(); }},
      {"id", EncodeIdValue("some-user"),
       [](absl::string_view v) { return DecodeIdValue(v).status(); }},
      {"counter", EncodeCounter({CounterOp::kMax, 77}),
       [](absl::string_view v) { return DecodeCounter(v).status(); }},
      {"manifest", EncodeManifest(SampleManifest()),
       [](absl::string_view v) { return DecodeManifest(v).status(); }},
      {"chunk", EncodeChunk(0, 3, 4, floats.data()),
       [](absl::string_view v) { return DecodeChunk(v).status(); }},
      {"format", EncodeFormatVersionValue(1),
       [](absl::string_view v) { return DecodeFormatVersionValue(v).status(); }},
      {"erased", EncodeErasedUserValue(true),
       [](absl::string_view v) { return DecodeErasedUserValue(v).status(); }},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(c.decode(c.value).ok()) << c.name;
    for (size_t n = 0; n < c.value.size(); ++n) {
      // A copy of exactly n bytes, so that AddressSanitizer catches any over-read.
      const std::string prefix = c.value.substr(0, n);
      EXPECT_EQ(c.decode(prefix).code(), absl::StatusCode::kDataLoss)
          << c.name << " truncated to " << n;
    }
    EXPECT_EQ(c.decode(c.value + '\0').code(), absl::StatusCode::kDataLoss)
        << c.name << " with a trailing byte";
  }
}

// Random bytes never crash a decoder (run under ASan for over-reads); they decode or fail with
// DataLoss.
TEST(GarbageTest, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  const std::vector<std::function<absl::Status(absl::string_view)>> decoders = {
      [](absl::string_view v) { return DecodeLogValue(v).status(); },
      [](absl::string_view v) { return DecodeHistoryValue(v, 1).status(); },
      [](absl::string_view v) { return DecodeItemValue(v, 1).status(); },
      [](absl::string_view v) { return DecodeIndexValue(v).status(); },
      [](absl::string_view v) { return DecodeIdValue(v).status(); },
      [](absl::string_view v) { return DecodeCounter(v).status(); },
      [](absl::string_view v) { return DecodeManifest(v).status(); },
      [](absl::string_view v) { return DecodeChunk(v).status(); },
      [](absl::string_view v) { return DecodeMarkerValue(v); },
      [](absl::string_view v) { return DecodeFormatVersionValue(v).status(); },
      [](absl::string_view v) { return DecodeVersionValue(v).status(); },
      [](absl::string_view v) { return DecodeErasedUserValue(v).status(); },
      [](absl::string_view v) { return DecodeLogKey(v).status(); },
      [](absl::string_view v) { return DecodeHistoryKey(v).status(); },
      [](absl::string_view v) { return DecodeItemKey(v).status(); },
      [](absl::string_view v) { return DecodeIdKey(v).status(); },
      [](absl::string_view v) { return DecodeModelKey(v).status(); },
  };
  int decoded = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    // Half the time, start like a real value so the decoders get past the version byte.
    if (!bytes.empty() && round % 2 == 0) bytes[0] = static_cast<char>(kValueEncodingVersion);
    for (const auto& decode : decoders) {
      const absl::Status s = decode(bytes);
      if (s.ok()) {
        ++decoded;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
      }
    }
  }
  EXPECT_GT(decoded, 0);  // the generator does reach valid encodings sometimes
}

// Flipping any single byte of a manifest never crashes the decoder.
TEST(GarbageTest, ManifestByteFlips) {
  const std::string m = EncodeManifest(SampleManifest());
  for (size_t i = 0; i < m.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = m;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      absl::StatusOr<ModelManifest> out = DecodeManifest(flipped);
      if (!out.ok()) {
        EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
      }
    }
  }
}

}  // namespace
}  // namespace recd::storage
