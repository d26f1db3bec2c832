#include "core/model.h"

#include <atomic>
#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

TrainingData SmallData() {
  TrainingData d;
  d.num_users = 4;
  d.num_items = 5;
  const int pairs[][2] = {{0, 0}, {0, 1}, {1, 1}, {1, 2}, {2, 3}, {2, 4}, {3, 0}, {3, 4}};
  int64_t t = 1000;
  for (const auto& p : pairs) {
    d.interactions.push_back({static_cast<UserIndex>(p[0]), static_cast<ItemIndex>(p[1]), t,
                              0.0f, EventType::kView, false});
    t += 1000;
  }
  d.last_sequence = 42;
  return d;
}

ModelData ValidPureSvd() {
  auto d = TrainModel({"svd", "pure_svd", {{"rank", "2"}}}, SmallData(), {});
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

TEST(ModelTest, KnownAlgorithms) {
  EXPECT_THAT(KnownAlgorithms(), Contains("popularity"));
  EXPECT_THAT(KnownAlgorithms(), Contains("pure_svd"));
}

TEST(ModelTest, TrainModelFillsMetadata) {
  auto d = TrainModel({"my_svd", "pure_svd", {{"rank", "3"}}}, SmallData(), {});
  ASSERT_TRUE(d.ok()) << d.status();
  const ModelMetadata& m = d->meta;
  EXPECT_EQ(m.name, "my_svd");
  EXPECT_EQ(m.algorithm, "pure_svd");
  EXPECT_EQ(m.version, 0u);
  EXPECT_EQ(m.trained_at_ms, 0);
  EXPECT_GE(m.train_seconds, 0.0);
  EXPECT_LT(m.train_seconds, 60.0);
  EXPECT_EQ(m.num_interactions, 8u);
  EXPECT_EQ(m.trained_through_sequence, 42u);
  EXPECT_EQ(m.num_users, 4u);
  EXPECT_EQ(m.num_items, 5u);
  EXPECT_EQ(m.params.at("rank"), "3");
  EXPECT_EQ(m.params.at("oversampling"), "10");  // defaults filled in
  EXPECT_EQ(m.params.size(), 7u);
  EXPECT_EQ(d->dim(), 3);

  auto unnamed = TrainModel({"", "popularity", {}}, SmallData(), {});
  ASSERT_TRUE(unnamed.ok());
  EXPECT_EQ(unnamed->meta.name, "popularity");
}

TEST(ModelTest, TrainModelErrors) {
  auto unknown = TrainModel({"x", "deep_magic", {}}, SmallData(), {});
  ASSERT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown algorithm 'deep_magic'"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("popularity, pure_svd"));

  auto key = TrainModel({"x", "popularity", {{"halflife", "3"}}}, SmallData(), {});
  ASSERT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(key.status().message(), HasSubstr("'halflife'"));
  EXPECT_THAT(key.status().message(), HasSubstr("weighting, half_life_days"));

  TrainingData bad = SmallData();
  bad.interactions[3].item = 5;
  auto out_of_range = TrainModel({"x", "popularity", {}}, bad, {});
  ASSERT_EQ(out_of_range.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("interaction 3"));

  TrainOptions zero_threads;
  zero_threads.num_threads = 0;
  EXPECT_EQ(TrainModel({"x", "pure_svd", {}}, SmallData(), zero_threads).status().code(),
            absl::StatusCode::kInvalidArgument);

  std::atomic<bool> cancel{true};
  TrainOptions cancelled;
  cancelled.cancel = &cancel;
  EXPECT_EQ(TrainModel({"x", "pure_svd", {}}, SmallData(), cancelled).status().code(),
            absl::StatusCode::kCancelled);
}

TEST(ModelTest, CreateModelAcceptsTrainedModels) {
  auto model = CreateModel(std::make_shared<const ModelData>(ValidPureSvd()));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->meta().name, "svd");
  EXPECT_EQ((*model)->dim(), 2);
}

void ExpectRejected(const ModelData& d, const std::vector<std::string>& parts) {
  auto model = CreateModel(std::make_shared<const ModelData>(d));
  ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << model.status();
  for (const std::string& p : parts) EXPECT_THAT(model.status().message(), HasSubstr(p));
}

TEST(ModelTest, CreateModelValidatesShapes) {
  ModelData d = ValidPureSvd();
  d.meta.version = 7;
  {
    ModelData e = d;
    e.item_factors.resize(0, 2);
    e.meta.num_items = 0;
    ExpectRejected(e, {"model 'svd' version 7", "item_factors is empty"});
  }
  {
    ModelData e = d;
    e.user_factors = EmbeddingMatrix::Zero(4, 3);
    ExpectRejected(e, {"user_factors has 3 columns", "item_factors has 2"});
  }
  {
    ModelData e = d;
    e.meta.num_users = 9;
    ExpectRejected(e, {"metadata says 9 users"});
  }
  {
    ModelData e = d;
    e.meta.num_items = 1;
    ExpectRejected(e, {"metadata says 1 items"});
  }
  {
    ModelData e = d;
    e.meta.algorithm = "deep_magic";
    ExpectRejected(e, {"unknown algorithm 'deep_magic'", "popularity, pure_svd"});
  }
  {
    // Zero user rows are fine whatever the width (fold-in-only models).
    ModelData e = d;
    e.user_factors.resize(0, 0);
    e.meta.num_users = 0;
    EXPECT_TRUE(CreateModel(std::make_shared<const ModelData>(e)).ok());
  }
  EXPECT_EQ(CreateModel(nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelTest, CreateModelRejectsNonFiniteValuesNamingTensorRowAndColumn) {
  ModelData d = ValidPureSvd();
  d.meta.version = 3;
  {
    ModelData e = d;
    e.item_factors(4, 1) = std::numeric_limits<float>::quiet_NaN();
    ExpectRejected(e, {"model 'svd' version 3", "'item_factors'", "row 4", "column 1"});
  }
  {
    ModelData e = d;
    e.user_factors(2, 0) = std::numeric_limits<float>::infinity();
    ExpectRejected(e, {"'user_factors'", "row 2", "column 0"});
  }
  {
    ModelData e = d;
    e.tensors["event_weights"](0, 5) = -std::numeric_limits<float>::infinity();
    ExpectRejected(e, {"'event_weights'", "row 0", "column 5"});
  }
}

TEST(ModelTest, UserEmbeddingOfKnownErasedAndUnknownUsers) {
  ModelData d = ValidPureSvd();
  d.user_factors.row(1).setZero();  // what the store does on DeleteUser
  auto model = CreateModel(std::make_shared<const ModelData>(d));
  ASSERT_TRUE(model.ok());
  const Model& m = **model;
  EXPECT_TRUE(m.HasUserEmbedding(0));
  EXPECT_EQ(m.UserEmbedding(0), d.user_factors.row(0).transpose());
  EXPECT_FALSE(m.HasUserEmbedding(1));
  EXPECT_EQ(m.UserEmbedding(1).size(), 0);
  EXPECT_FALSE(m.HasUserEmbedding(4));
  EXPECT_FALSE(m.HasUserEmbedding(kNoIndex));
  EXPECT_EQ(m.UserEmbedding(kNoIndex).size(), 0);
}

}  // namespace
}  // namespace recd
