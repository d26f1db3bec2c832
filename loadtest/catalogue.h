// The synthetic catalogue recload loads into a server and then draws its requests from.
//
// Ids are "<prefix><n>": users u0..u(U-1), items i0..i(I-1) by default, so a run only needs the
// prefixes and counts to address ids that exist on the server.
//
// Structure (so that a factor model has something to learn): item n carries category
// "c<n mod C>" (every third item also a second category), user n has the taste of category
// "c<n mod C>"; 80 % of a user's interactions go to items of that category, drawn by Zipf
// popularity within it, the rest to items drawn by Zipf popularity over the whole catalogue.
// Users have 1 .. 2*mean-1 interactions (uniform), mean = interactions / users.
//
// Deterministic for a seed. Not thread-safe (one generator, or one per thread with its own
// range of users).
#ifndef RECD_LOADTEST_CATALOGUE_H_
#define RECD_LOADTEST_CATALOGUE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "loadtest/zipf.h"
#include "recd/v1/recommender.pb.h"

namespace recd::loadtest {

struct CatalogueSpec {
  uint64_t num_users = 100000;
  uint64_t num_items = 100000;
  uint64_t num_interactions = 3000000;  // approximate: per-user counts are random
  int num_categories = 50;
  double item_zipf = 1.0;  // popularity exponent of items (within a category and overall)
  std::string user_prefix = "u";
  std::string item_prefix = "i";
  uint64_t seed = 7;
};

std::string UserId(const CatalogueSpec& spec, uint64_t user);
std::string ItemId(const CatalogueSpec& spec, uint64_t item);

// Item records, ids [first, first + count) clamped to the catalogue.
std::vector<recd::v1::Item> MakeItems(const CatalogueSpec& spec, uint64_t first, uint64_t count);

// Streams the interactions user by user (user 0 first).
class InteractionGenerator {
 public:
  explicit InteractionGenerator(const CatalogueSpec& spec);

  // Appends up to `max_count` interactions to `out`; returns how many (0 when exhausted).
  size_t Next(size_t max_count, google::protobuf::RepeatedPtrField<recd::v1::Interaction>* out);
  // Interactions produced so far.
  uint64_t produced() const { return produced_; }
  // Upper bound of the total, for progress: users * (2 * mean - 1).
  uint64_t expected_total() const;

 private:
  uint64_t PickItem(uint64_t user);

  CatalogueSpec spec_;
  uint64_t mean_;
  Rng rng_;
  ZipfSampler global_items_;
  ZipfSampler within_category_;   // ranks within a category (size: items per category)
  uint64_t user_ = 0;
  uint64_t left_for_user_ = 0;
  uint64_t produced_ = 0;
};

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_CATALOGUE_H_
