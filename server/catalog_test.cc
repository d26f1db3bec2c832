#include "server/catalog.h"

#include "gtest/gtest.h"

namespace recd::server {
namespace {

storage::ItemRecord Record(ItemIndex index, std::vector<std::string> categories,
                           std::vector<std::string> tags = {}, bool active = true) {
  storage::ItemRecord r;
  r.id = "i" + std::to_string(index);
  r.index = index;
  r.categories = std::move(categories);
  r.tags = std::move(tags);
  r.active = active;
  return r;
}

std::vector<ItemIndex> Allowed(const ItemBitset& exclusion) {
  std::vector<ItemIndex> out;
  for (size_t i = 0; i < exclusion.size(); ++i) {
    if (!exclusion.Test(i)) out.push_back(static_cast<ItemIndex>(i));
  }
  return out;
}

std::optional<ItemIndex> NoIds(absl::string_view) { return std::nullopt; }

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = Catalog().With({Record(0, {"books"}, {"new"}), Record(1, {"books", "music"}),
                               Record(2, {"music"}, {"new"}), Record(3, {"film"}, {}, /*active=*/false)});
  }
  std::shared_ptr<const Catalog> catalog_;
};

TEST_F(CatalogTest, EmptyFilterExcludesOnlyUnservable) {
  // Item 4 has no record: servable with no attributes.
  EXPECT_EQ(Allowed(catalog_->Exclusion({}, 5, NoIds)), (std::vector<ItemIndex>{0, 1, 2, 4}));
}

TEST_F(CatalogTest, IncludeAnyAllAndExclude) {
  recd::v1::ItemFilter f;
  f.add_include_categories("books");
  f.add_include_categories("music");
  EXPECT_EQ(Allowed(catalog_->Exclusion(f, 5, NoIds)), (std::vector<ItemIndex>{0, 1, 2}));
  f.set_require_all_categories(true);
  EXPECT_EQ(Allowed(catalog_->Exclusion(f, 5, NoIds)), (std::vector<ItemIndex>{1}));
  f.Clear();
  f.add_exclude_categories("books");
  EXPECT_EQ(Allowed(catalog_->Exclusion(f, 5, NoIds)), (std::vector<ItemIndex>{2, 4}));
  f.Clear();
  f.add_include_tags("new");
  f.add_exclude_categories("music");
  EXPECT_EQ(Allowed(catalog_->Exclusion(f, 5, NoIds)), (std::vector<ItemIndex>{0}));
}

TEST_F(CatalogTest, InactiveNeverAllowedEvenWhenFiltered) {
  recd::v1::ItemFilter f;
  f.add_include_categories("film");
  EXPECT_TRUE(Allowed(catalog_->Exclusion(f, 5, NoIds)).empty());
  f.Clear();
  f.add_include_categories("no-such-category");
  EXPECT_TRUE(Allowed(catalog_->Exclusion(f, 5, NoIds)).empty());
}

TEST_F(CatalogTest, IncludeItemIdsUsesResolver) {
  recd::v1::ItemFilter f;
  f.add_include_item_ids("x");
  f.add_include_item_ids("unknown");
  auto find = [](absl::string_view id) -> std::optional<ItemIndex> {
    if (id == "x") return 2;
    return std::nullopt;
  };
  EXPECT_EQ(Allowed(catalog_->Exclusion(f, 5, find)), (std::vector<ItemIndex>{2}));
}

TEST_F(CatalogTest, UpdatesAreCopyOnWrite) {
  auto updated = catalog_->With({Record(0, {"music"}), Record(3, {"film"}, {}, true)});
  recd::v1::ItemFilter music;
  music.add_include_categories("music");
  EXPECT_EQ(Allowed(updated->Exclusion(music, 5, NoIds)), (std::vector<ItemIndex>{0, 1, 2}));
  EXPECT_TRUE(updated->IsServable(3));
  // The old snapshot is unchanged.
  EXPECT_EQ(Allowed(catalog_->Exclusion(music, 5, NoIds)), (std::vector<ItemIndex>{1, 2}));
  EXPECT_FALSE(catalog_->IsServable(3));
  EXPECT_EQ(catalog_->Attributes(0).categories, std::vector<std::string>{"books"});
  EXPECT_EQ(updated->Attributes(0).categories, std::vector<std::string>{"music"});

  storage::ItemRecord deleted;
  deleted.index = 1;
  deleted.deleted = true;
  auto after_delete = updated->With({deleted});
  EXPECT_FALSE(after_delete->IsServable(1));
  EXPECT_EQ(Allowed(after_delete->Exclusion(music, 5, NoIds)), (std::vector<ItemIndex>{0, 2}));
}

TEST_F(CatalogTest, LargeIndicesSpanChunks) {
  auto big = catalog_->With({Record(10000, {"books"})});
  recd::v1::ItemFilter f;
  f.add_include_categories("books");
  auto allowed = Allowed(big->Exclusion(f, 10001, NoIds));
  EXPECT_EQ(allowed, (std::vector<ItemIndex>{0, 1, 10000}));
  // Scanning fewer items than the catalogue knows is fine (a model older than the item).
  EXPECT_EQ(Allowed(big->Exclusion(f, 3, NoIds)), (std::vector<ItemIndex>{0, 1}));
}

}  // namespace
}  // namespace recd::server
