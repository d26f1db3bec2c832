// The recd server process: store, models, trainer and the gRPC endpoint, with an orderly start
// and shutdown.
//
// Start() opens the store, loads the live models, loads demo data when asked and the store is
// empty, starts gRPC (Recommender, grpc.health.v1.Health, reflection) and only then reports
// SERVING. Shutdown() reports NOT_SERVING, drains in-flight calls until the drain deadline,
// stops the trainer and closes the store.
#ifndef RECD_SERVER_SERVER_H_
#define RECD_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/sync.h"
#include "server/options.h"

namespace recd::server {

class RecdServer {
 public:
  // Errors name the cause and what to do: data folder not writable, store in use by another
  // process, address in use, invalid options.
  static absl::StatusOr<std::unique_ptr<RecdServer>> Start(const ServerOptions& options);

  virtual ~RecdServer() = default;

  // The bound TCP port (useful with port 0).
  virtual int port() const = 0;
  // A recctl command line a newcomer can paste to try the server ("" when the store has no users).
  virtual std::string ExampleCommand() const = 0;
  // Idempotent; safe to call from any thread except a gRPC handler.
  virtual void Shutdown() = 0;
};

}  // namespace recd::server

#endif  // RECD_SERVER_SERVER_H_
