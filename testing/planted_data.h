// Small planted data sets shared by in-process and integration tests.
#ifndef RECD_TESTING_PLANTED_DATA_H_
#define RECD_TESTING_PLANTED_DATA_H_

#include <vector>

#include "recd/v1/recommender.pb.h"

namespace recd::testing {

// Two taste clusters: users "ua<n>" interact only with items "a<n>" (category "A"), users
// "ub<n>" only with items "b<n>" (category "B"). Each user touches `per_user` distinct items of
// their cluster, chosen deterministically. A model that learned anything recommends a user only
// items of their own cluster.
struct ClusteredData {
  std::vector<recd::v1::Interaction> interactions;
  std::vector<recd::v1::Item> items;
};
ClusteredData MakeClusteredData(int users_per_cluster = 30, int items_per_cluster = 20, int per_user = 8);

}  // namespace recd::testing

#endif  // RECD_TESTING_PLANTED_DATA_H_
