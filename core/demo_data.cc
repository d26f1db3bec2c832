#include "core/demo_data.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/random.h"

namespace recd {
namespace {

// Every probability and constant of the generative story in the header, in one place.
constexpr double kGlobalPickShare = 0.1;
constexpr double kFavouriteMass = 0.85;
constexpr double kSecondaryGenreProb = 0.3;
constexpr double kSecondaryWeight = 0.5;
constexpr double kRatingProb = 0.06;
constexpr double kClickProb = 0.25;
constexpr double kCartProb = 0.3;
constexpr double kPurchaseProb = 0.5;
constexpr double kLikeProb = 0.03;
constexpr double kDislikeProb = 0.1;  // of global, non-rating picks
constexpr int kTagPoolSize = 6;

constexpr const char* kTagWords[] = {
    "action",   "adventure", "comedy",   "drama",    "mystery",  "romance",  "horror",
    "thriller", "fantasy",   "scifi",    "history",  "war",      "western",  "musical",
    "family",   "animation", "crime",    "sports",   "biography", "documentary", "noir",
    "space",    "robots",    "magic",    "detective", "heist",   "survival", "coming-of-age",
    "satire",   "cult",      "indie",    "classic",  "epic",     "slow-burn", "feel-good",
    "dark",     "quirky",    "tearjerker", "based-on-book", "award-winner"};
constexpr int kNumTagWords = sizeof(kTagWords) / sizeof(kTagWords[0]);

constexpr const char* kTitleAdjectives[] = {
    "Silent", "Crimson", "Hidden",  "Golden",  "Broken", "Distant", "Electric", "Frozen",
    "Wild",   "Secret",  "Last",    "Burning", "Hollow", "Velvet",  "Midnight", "Northern",
    "Quiet",  "Restless", "Shining", "Stolen", "Sudden", "Tangled", "Wandering", "Winter"};
constexpr const char* kTitleNouns[] = {
    "Harbor", "Garden",  "River",  "Empire",  "Signal", "Horizon", "Orchard", "Circuit",
    "Mirror", "Frontier", "Voyage", "Kingdom", "Echo",  "Lantern", "Compass", "Canyon",
    "Promise", "Archive", "Tide",  "Summit",  "Paradox", "Meadow", "Station", "Labyrinth"};
constexpr int kNumAdjectives = sizeof(kTitleAdjectives) / sizeof(kTitleAdjectives[0]);
constexpr int kNumNouns = sizeof(kTitleNouns) / sizeof(kTitleNouns[0]);

std::string PaddedId(char prefix, int64_t one_based, int64_t count) {
  const int width = std::max<int>(4, static_cast<int>(absl::StrCat(count).size()));
  return absl::StrFormat("%c%0*d", prefix, width, one_based);
}

// A categorical distribution sampled by binary search over the cumulative weights.
class Categorical {
 public:
  Categorical() = default;
  explicit Categorical(const std::vector<double>& weights) : cumulative_(weights.size()) {
    double sum = 0.0;
    for (size_t i = 0; i < weights.size(); ++i) cumulative_[i] = (sum += weights[i]);
  }
  bool empty() const { return cumulative_.empty() || cumulative_.back() <= 0.0; }
  size_t Sample(PortableRng& rng) const {
    const double x = rng.Uniform() * cumulative_.back();
    const size_t i = std::upper_bound(cumulative_.begin(), cumulative_.end(), x) -
                     cumulative_.begin();
    return std::min(i, cumulative_.size() - 1);
  }

 private:
  std::vector<double> cumulative_;
};

absl::Status CheckRange(const char* name, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("demo data option ", name, " = ", value,
                                                   " is outside [", min, ", ", max, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DemoDataset> GenerateDemoData(const DemoDataOptions& o) {
  for (absl::Status s : {CheckRange("num_users", o.num_users, 1, 10'000'000),
                         CheckRange("num_items", o.num_items, 1, 10'000'000),
                         CheckRange("num_interactions", o.num_interactions, 0, 100'000'000),
                         CheckRange("num_genres", o.num_genres, 1, 1000),
                         CheckRange("span_days", o.span_days, 1, 3650),
                         CheckRange("end_time_ms", o.end_time_ms, 1, int64_t{1} << 50)}) {
    if (!s.ok()) return s;
  }
  PortableRng rng(o.seed);
  const int num_genres = o.num_genres;
  DemoDataset out;

  // ---- Items ----
  // Popularity rank: a Fisher-Yates permutation of the catalogue.
  std::vector<int> rank(o.num_items);
  for (int i = 0; i < o.num_items; ++i) rank[i] = i;
  for (int i = o.num_items - 1; i > 0; --i) {
    std::swap(rank[i], rank[rng.UniformInt(static_cast<uint64_t>(i) + 1)]);
  }
  out.items.resize(o.num_items);
  std::vector<double> global_weight(o.num_items);
  std::vector<std::vector<int>> genre_members(num_genres);
  std::vector<std::vector<double>> genre_weight(num_genres);
  for (int i = 0; i < o.num_items; ++i) {
    DemoItem& item = out.items[i];
    item.id = PaddedId('i', i + 1, o.num_items);
    item.genre = static_cast<int>(rng.UniformInt(num_genres));
    if (num_genres > 1 && rng.Bernoulli(kSecondaryGenreProb)) {
      item.secondary_genre =
          (item.genre + 1 + static_cast<int>(rng.UniformInt(num_genres - 1))) % num_genres;
    }
    item.categories = {absl::StrFormat("genre-%02d", item.genre)};
    const int num_tags = 1 + static_cast<int>(rng.UniformInt(3));
    while (static_cast<int>(item.tags.size()) < num_tags) {
      const int word = (item.genre * 2 + static_cast<int>(rng.UniformInt(kTagPoolSize))) %
                       kNumTagWords;
      std::string tag = kTagWords[word];
      if (std::find(item.tags.begin(), item.tags.end(), tag) == item.tags.end()) {
        item.tags.push_back(std::move(tag));
      }
    }
    // Two statements: the evaluation order of function arguments is unspecified.
    const char* adjective = kTitleAdjectives[rng.UniformInt(kNumAdjectives)];
    const char* noun = kTitleNouns[rng.UniformInt(kNumNouns)];
    item.title = absl::StrCat("The ", adjective, " ", noun);
    // (rank + 5)^-0.75 with square roots only: IEEE sqrt is exactly rounded everywhere, pow not.
    const double r = rank[i] + 5.0;
    item.popularity = 1.0 / (std::sqrt(r) * std::sqrt(std::sqrt(r)));
    global_weight[i] = item.popularity;
    genre_members[item.genre].push_back(i);
    genre_weight[item.genre].push_back(item.popularity);
    if (item.secondary_genre >= 0) {
      genre_members[item.secondary_genre].push_back(i);
      genre_weight[item.secondary_genre].push_back(kSecondaryWeight * item.popularity);
    }
  }
  const Categorical global_items(global_weight);
  std::vector<Categorical> genre_items;
  genre_items.reserve(num_genres);
  for (const auto& w : genre_weight) genre_items.emplace_back(w);
  genre_weight.clear();

  // ---- Users ----
  out.users.resize(o.num_users);
  std::vector<double> activity(o.num_users);
  std::vector<Categorical> user_genres(o.num_users);
  for (int u = 0; u < o.num_users; ++u) {
    DemoUser& user = out.users[u];
    user.id = PaddedId('u', u + 1, o.num_users);
    std::vector<double> taste(num_genres, (1.0 - kFavouriteMass) / num_genres);
    const int favourites = std::min(num_genres, 1 + static_cast<int>(rng.UniformInt(3)));
    std::vector<int> chosen;
    std::vector<double> strength;
    double total = 0.0;
    while (static_cast<int>(chosen.size()) < favourites) {
      const int g = static_cast<int>(rng.UniformInt(num_genres));
      if (std::find(chosen.begin(), chosen.end(), g) != chosen.end()) continue;
      chosen.push_back(g);
      strength.push_back(0.5 + rng.Uniform());
      total += strength.back();
    }
    for (size_t j = 0; j < chosen.size(); ++j) taste[chosen[j]] += kFavouriteMass * strength[j] / total;
    user.taste.assign(taste.begin(), taste.end());
    user_genres[u] = Categorical(taste);
    user.activity = 1.0 / (0.02 + 0.98 * rng.Uniform());
    activity[u] = user.activity;
  }
  const Categorical users_by_activity(activity);

  // ---- Interactions ----
  const int64_t span_ms = int64_t{o.span_days} * 86'400'000;
  const size_t target = static_cast<size_t>(o.num_interactions);
  out.interactions.reserve(target);
  while (out.interactions.size() < target) {
    const size_t u = users_by_activity.Sample(rng);
    const bool global = rng.Bernoulli(kGlobalPickShare);
    size_t item;
    if (global) {
      item = global_items.Sample(rng);
    } else {
      const size_t g = user_genres[u].Sample(rng);
      item = genre_items[g].empty() ? global_items.Sample(rng)
                                    : genre_members[g][genre_items[g].Sample(rng)];
    }
    int64_t t = o.end_time_ms - 1 - static_cast<int64_t>(rng.Uniform() * static_cast<double>(span_ms));
    auto emit = [&](EventType event, bool has_value, float value) {
      if (out.interactions.size() >= target) return;
      ExternalInteraction x;
      x.user_id = out.users[u].id;
      x.item_id = out.items[item].id;
      x.event = event;
      x.has_value = has_value;
      x.value = value;
      x.timestamp_ms = t;
      out.interactions.push_back(std::move(x));
      t = std::min<int64_t>(o.end_time_ms, t + 1000 * (1 + static_cast<int64_t>(rng.UniformInt(120))));
    };
    if (rng.Bernoulli(kRatingProb)) {
      const int rating = global ? 1 + static_cast<int>(rng.UniformInt(4))
                                : 3 + static_cast<int>(rng.UniformInt(3));
      emit(EventType::kRating, true, static_cast<float>(rating));
      continue;
    }
    emit(EventType::kView, false, 0.0f);
    if (global && rng.Bernoulli(kDislikeProb)) {
      emit(EventType::kDislike, false, 0.0f);
      continue;
    }
    if (rng.Bernoulli(kLikeProb)) emit(EventType::kLike, false, 0.0f);
    if (rng.Bernoulli(kClickProb)) {
      emit(EventType::kClick, false, 0.0f);
      if (rng.Bernoulli(kCartProb)) {
        emit(EventType::kAddToCart, false, 0.0f);
        if (rng.Bernoulli(kPurchaseProb)) emit(EventType::kPurchase, false, 0.0f);
      }
    }
  }
  std::stable_sort(out.interactions.begin(), out.interactions.end(),
                   [](const ExternalInteraction& a, const ExternalInteraction& b) {
                     return a.timestamp_ms < b.timestamp_ms;
                   });
  return out;
}

TrainingData DemoTrainingData(const DemoDataset& data, bool include_unseen_items) {
  TrainingData out;
  absl::flat_hash_map<std::string, uint32_t> users, items;
  out.interactions.reserve(data.interactions.size());
  for (const ExternalInteraction& e : data.interactions) {
    Interaction& x = out.interactions.emplace_back();
    x.user = users.try_emplace(e.user_id, static_cast<uint32_t>(users.size())).first->second;
    x.item = items.try_emplace(e.item_id, static_cast<uint32_t>(items.size())).first->second;
    x.event = e.event;
    x.has_value = e.has_value;
    x.value = e.value;
    x.timestamp_ms = e.timestamp_ms;
  }
  if (include_unseen_items) {
    for (const DemoItem& item : data.items) items.try_emplace(item.id, static_cast<uint32_t>(items.size()));
  }
  out.num_users = static_cast<uint32_t>(users.size());
  out.num_items = static_cast<uint32_t>(items.size());
  out.last_sequence = out.interactions.size();
  out.item_features.resize(out.num_items);
  for (const DemoItem& item : data.items) {
    auto it = items.find(item.id);
    if (it == items.end()) continue;
    out.item_features[it->second].categories = item.categories;
    out.item_features[it->second].tags = item.tags;
  }
  return out;
}

}  // namespace recd
