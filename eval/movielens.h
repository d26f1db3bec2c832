// Reading MovieLens files for offline evaluation. This is the only place in the evaluation tool
// that touches files; everything after loading is core/ computation.
//
// Supported layouts of a MovieLens folder:
//   ML-100K: u.data (user<TAB>item<TAB>rating<TAB>seconds), u.item (genre flags, Latin-1),
//            u.genre, and the fold files u1..u5.base/.test.
//   ML-1M / ML-10M: ratings.dat (user::item::rating::seconds) and movies.dat
//            (item::title::Genre1|Genre2).
// Ids become dense indices in ascending numeric order (ids that are not numbers sort after the
// numeric ones, as text), so an ML-100K index is simply the id minus one.
#ifndef RECD_EVAL_MOVIELENS_H_
#define RECD_EVAL_MOVIELENS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"

namespace recd::eval {

struct MovieLensData {
  std::string dir;
  std::string layout;  // "ml-100k" or "ratings.dat"
  // Every rating of the main file in file order, as kRating events with value and timestamp.
  // num_users / num_items cover every id in the ratings and the item file; item_features hold
  // each item's genres as categories.
  TrainingData ratings;
  std::map<std::string, uint32_t> user_index, item_index;
  bool has_folds = false;  // u1..u5.base/.test present
};

// Loads the folder. NotFound when neither layout is present; InvalidArgument (file and line)
// for a malformed line.
absl::StatusOr<MovieLensData> LoadMovieLens(const std::string& dir);

// Loads a ratings file in the u.data format with the index maps of `data` (fold files).
// InvalidArgument for an id the main file does not have.
absl::StatusOr<TrainingData> LoadRatingsWithIndex(const std::string& path,
                                                  const MovieLensData& data);

}  // namespace recd::eval

#endif  // RECD_EVAL_MOVIELENS_H_
