#include "loadtest/populate.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "loadtest/driver.h"
#include "loadtest/target.h"
#include "recd/v1/recommender.grpc.pb.h"

namespace recd::loadtest {
namespace {

using recd::v1::Recommender;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

absl::StatusOr<recd::v1::GetModelInfoResponse> ModelInfo(Recommender::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(30)));
  recd::v1::GetModelInfoResponse info;
  if (absl::Status s = FromGrpc(stub.GetModelInfo(&context, {}, &info), "GetModelInfo"); !s.ok()) return s;
  return info;
}

}  // namespace

absl::StatusOr<PopulateResult> Populate(const PopulateOptions& options,
                                        const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  if (absl::Status s = CheckLoopbackTarget(options.target); !s.ok()) return s;
  const CatalogueSpec& spec = options.catalogue;
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(In(absl::Seconds(10)))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", options.target, " within 10 s"));
  }
  std::unique_ptr<Recommender::Stub> stub = Recommender::NewStub(channel);
  PopulateResult result;

  absl::StatusOr<recd::v1::GetModelInfoResponse> before = ModelInfo(*stub);
  if (!before.ok()) return before.status();
  bool model_live = false;
  for (const recd::v1::ModelInfo& m : before->models()) {
    if (m.is_default() && m.live_version() > 0) model_live = true;
  }
  result.skipped_load = !options.force && before->num_items() >= spec.num_items &&
                        before->num_users() >= spec.num_users &&
                        before->num_interactions() >= spec.num_interactions * 9 / 10;
  if (result.skipped_load) {
    say(absl::StrFormat("server already holds %d users, %d items, %d interactions: not loading again "
                        "(--force to load anyway)",
                        before->num_users(), before->num_items(), before->num_interactions()));
  } else {
    const int64_t t0 = NowNs();
    // Items first, so every item carries its categories before interactions reference it.
    const int batch = std::clamp(options.batch, 1, 10000);
    for (uint64_t first = 0; first < spec.num_items; first += batch) {
      recd::v1::UpsertItemsRequest request;
      for (recd::v1::Item& item : MakeItems(spec, first, batch)) *request.add_items() = std::move(item);
      grpc::ClientContext context;
      context.set_deadline(In(absl::Minutes(2)));
      recd::v1::UpsertItemsResponse response;
      if (absl::Status s = FromGrpc(stub->UpsertItems(&context, request, &response), "UpsertItems"); !s.ok()) {
        return s;
      }
      result.items += response.upserted();
    }
    say(absl::StrFormat("upserted %d items in %.1f s", result.items, (NowNs() - t0) / 1e9));

    // Interactions: `in_flight` threads each take the generator's next batch and send it.
    InteractionGenerator generator(spec);
    std::mutex generator_mu;
    std::mutex error_mu;
    absl::Status first_error;
    std::atomic<uint64_t> acked{0};
    std::atomic<bool> failed{false};
    const int64_t t1 = NowNs();
    auto sender = [&] {
      while (!failed.load()) {
        recd::v1::LogInteractionsRequest request;
        {
          std::lock_guard<std::mutex> lock(generator_mu);
          if (generator.Next(batch, request.mutable_interactions()) == 0) return;
        }
        grpc::ClientContext context;
        context.set_deadline(In(absl::Minutes(5)));
        recd::v1::LogInteractionsResponse response;
        absl::Status s = FromGrpc(stub->LogInteractions(&context, request, &response), "LogInteractions");
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (first_error.ok()) first_error = s;
          failed.store(true);
          return;
        }
        acked.fetch_add(response.accepted());
      }
    };
    std::vector<std::thread> senders;
    for (int i = 0; i < std::max(1, options.in_flight); ++i) senders.emplace_back(sender);
    std::atomic<bool> senders_done{false};
    std::thread reporter([&] {
      while (!senders_done.load()) {
        for (int i = 0; i < 50 && !senders_done.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (senders_done.load()) return;
        const uint64_t now = acked.load();
        say(absl::StrFormat("  %d of ~%d interactions acknowledged (%.0f/s)", now, spec.num_interactions,
                            now / ((NowNs() - t1) / 1e9)));
      }
    });
    for (std::thread& t : senders) t.join();
    senders_done.store(true);
    reporter.join();
    if (!first_error.ok()) return first_error;
    result.interactions = acked.load();
    result.load_seconds = (NowNs() - t0) / 1e9;
    say(absl::StrFormat("logged %d interactions in %.1f s (%.0f/s)", result.interactions, (NowNs() - t1) / 1e9,
                        result.interactions / ((NowNs() - t1) / 1e9)));
  }

  if (options.train && (!result.skipped_load || !model_live)) {
    say(absl::StrFormat("training (TrainNow, wait, deadline %s)", absl::FormatDuration(options.train_timeout)));
    const int64_t t2 = NowNs();
    grpc::ClientContext context;
    context.set_deadline(In(options.train_timeout));
    recd::v1::TrainNowRequest request;
    request.set_wait(true);
    if (absl::Status s = FromGrpc(stub->TrainNow(&context, request, &result.train), "TrainNow"); !s.ok()) return s;
    result.train_seconds = (NowNs() - t2) / 1e9;
    for (const recd::v1::TrainResult& r : result.train.results()) {
      say(absl::StrFormat("  %s: %s v%d in %.1f s %s", r.model(), recd::v1::TrainOutcome_Name(r.outcome()),
                          r.version(), r.train_seconds(), r.message()));
      if (r.outcome() != recd::v1::TRAIN_PUBLISHED) {
        return absl::FailedPreconditionError(absl::StrCat("training ", r.model(), " ended with ",
                                                          recd::v1::TrainOutcome_Name(r.outcome()), ": ",
                                                          r.message()));
      }
    }
  }
  absl::StatusOr<recd::v1::GetModelInfoResponse> after = ModelInfo(*stub);
  if (!after.ok()) return after.status();
  result.info = *after;
  return result;
}

}  // namespace recd::loadtest
