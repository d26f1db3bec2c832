#include "eval/movielens.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "core/text_import.h"

namespace recd::eval {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

absl::StatusOr<std::vector<ExternalInteraction>> ReadRatings(const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path));
  std::vector<ExternalInteraction> out;
  out.reserve(lines.size());
  for (size_t n = 0; n < lines.size(); ++n) {
    if (IsBlankLine(lines[n])) continue;
    auto x = ParseMovieLensLine(lines[n], static_cast<int64_t>(n + 1));
    if (!x.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", x.status().message()));
    out.push_back(std::move(*x));
  }
  return out;
}

// Numeric ids first in numeric order, then the rest as text.
std::map<std::string, uint32_t> IndexIds(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::stable_sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
    uint64_t x, y;
    const bool na = absl::SimpleAtoi(a, &x), nb = absl::SimpleAtoi(b, &y);
    if (na != nb) return na;
    return na && x < y;
  });
  std::map<std::string, uint32_t> index;
  for (uint32_t i = 0; i < ids.size(); ++i) index.emplace(ids[i], i);
  return index;
}

Interaction ToInteraction(const ExternalInteraction& x, uint32_t user, uint32_t item) {
  Interaction out;
  out.user = user;
  out.item = item;
  out.timestamp_ms = x.timestamp_ms;
  out.value = x.value;
  out.event = x.event;
  out.has_value = x.has_value;
  return out;
}

// u.item: id|title|release|video release|url|19 genre flags; genre names from u.genre
// ("name|index"). Latin-1 titles are not needed and not decoded.
absl::StatusOr<std::vector<std::pair<std::string, std::vector<std::string>>>> ReadMl100kItems(
    const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> genre_lines, ReadLines(dir + "/u.genre"));
  std::vector<std::string> genres;
  for (const std::string& line : genre_lines) {
    if (IsBlankLine(line)) continue;
    std::vector<std::string> f = absl::StrSplit(line, '|');
    int index;
    if (f.size() != 2 || !absl::SimpleAtoi(f[1], &index) || index != static_cast<int>(genres.size())) {
      return absl::InvalidArgumentError(absl::StrCat(dir, "/u.genre: bad line '", line, "'"));
    }
    genres.push_back(f[0]);
  }
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(dir + "/u.item"));
  std::vector<std::pair<std::string, std::vector<std::string>>> items;
  for (size_t n = 0; n < lines.size(); ++n) {
    if (IsBlankLine(lines[n])) continue;
    std::vector<std::string> f = absl::StrSplit(lines[n], '|');
    if (f.size() != 5 + genres.size()) {
      return absl::InvalidArgumentError(absl::StrCat(dir, "/u.item line ", n + 1, ": ", f.size(),
                                                     " fields, expected ", 5 + genres.size()));
    }
    std::vector<std::string> categories;
    for (size_t g = 0; g < genres.size(); ++g) {
      if (f[5 + g] == "1") categories.push_back(genres[g]);
    }
    items.emplace_back(f[0], std::move(categories));
  }
  return items;
}

// movies.dat: id::title::Genre1|Genre2
absl::StatusOr<std::vector<std::pair<std::string, std::vector<std::string>>>> ReadMoviesDat(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path));
  std::vector<std::pair<std::string, std::vector<std::string>>> items;
  for (size_t n = 0; n < lines.size(); ++n) {
    if (IsBlankLine(lines[n])) continue;
    std::vector<std::string> f = absl::StrSplit(lines[n], "::");
    if (f.size() < 3) {
      return absl::InvalidArgumentError(absl::StrCat(path, " line ", n + 1, ": expected id::title::genres"));
    }
    std::vector<std::string> categories = absl::StrSplit(f.back(), '|', absl::SkipEmpty());
    items.emplace_back(f[0], std::move(categories));
  }
  return items;
}

}  // namespace

absl::StatusOr<MovieLensData> LoadMovieLens(const std::string& dir) {
  MovieLensData data;
  data.dir = dir;
  std::string ratings_path;
  std::vector<std::pair<std::string, std::vector<std::string>>> items;
  if (fs::exists(dir + "/u.data")) {
    data.layout = "ml-100k";
    ratings_path = dir + "/u.data";
    if (fs::exists(dir + "/u.item") && fs::exists(dir + "/u.genre")) {
      ASSIGN_OR_RETURN(items, ReadMl100kItems(dir));
    }
    data.has_folds = true;
    for (int f = 1; f <= 5; ++f) {
      data.has_folds = data.has_folds && fs::exists(absl::StrCat(dir, "/u", f, ".base")) &&
                       fs::exists(absl::StrCat(dir, "/u", f, ".test"));
    }
  } else if (fs::exists(dir + "/ratings.dat")) {
    data.layout = "ratings.dat";
    ratings_path = dir + "/ratings.dat";
    if (fs::exists(dir + "/movies.dat")) {
      ASSIGN_OR_RETURN(items, ReadMoviesDat(dir + "/movies.dat"));
    }
  } else {
    return absl::NotFoundError(absl::StrCat(
        "no MovieLens ratings in '", dir, "' (expected u.data or ratings.dat; see README, "
        "section 'Offline evaluation on MovieLens')"));
  }
  ASSIGN_OR_RETURN(std::vector<ExternalInteraction> ratings, ReadRatings(ratings_path));
  std::vector<std::string> user_ids, item_ids;
  for (const ExternalInteraction& x : ratings) {
    user_ids.push_back(x.user_id);
    item_ids.push_back(x.item_id);
  }
  for (const auto& [id, categories] : items) item_ids.push_back(id);
  data.user_index = IndexIds(std::move(user_ids));
  data.item_index = IndexIds(std::move(item_ids));
  TrainingData& t = data.ratings;
  t.num_users = static_cast<uint32_t>(data.user_index.size());
  t.num_items = static_cast<uint32_t>(data.item_index.size());
  t.interactions.reserve(ratings.size());
  for (const ExternalInteraction& x : ratings) {
    t.interactions.push_back(ToInteraction(x, data.user_index.at(x.user_id), data.item_index.at(x.item_id)));
  }
  t.last_sequence = t.interactions.size();
  t.item_features.resize(t.num_items);
  for (auto& [id, categories] : items) {
    t.item_features[data.item_index.at(id)].categories = std::move(categories);
  }
  return data;
}

absl::StatusOr<TrainingData> LoadRatingsWithIndex(const std::string& path,
                                                  const MovieLensData& data) {
  ASSIGN_OR_RETURN(std::vector<ExternalInteraction> ratings, ReadRatings(path));
  TrainingData t;
  t.num_users = data.ratings.num_users;
  t.num_items = data.ratings.num_items;
  t.item_features = data.ratings.item_features;
  for (const ExternalInteraction& x : ratings) {
    auto u = data.user_index.find(x.user_id);
    auto i = data.item_index.find(x.item_id);
    if (u == data.user_index.end() || i == data.item_index.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": user '", x.user_id, "' or item '",
                                                     x.item_id, "' is not in the main ratings file"));
    }
    t.interactions.push_back(ToInteraction(x, u->second, i->second));
  }
  t.last_sequence = t.interactions.size();
  return t;
}

}  // namespace recd::eval
