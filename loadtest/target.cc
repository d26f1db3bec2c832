#include "loadtest/target.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace recd::loadtest {
namespace {

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;  // 127.0.0.0/8
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

absl::Status Refuse(absl::string_view target, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--target '", target, "': ", why,
      "; recload only loads servers on this machine (127.0.0.0/8, ::1, localhost or a Unix socket)"));
}

}  // namespace

absl::Status CheckLoopbackTarget(absl::string_view target) {
  absl::string_view rest = absl::StripAsciiWhitespace(target);
  if (rest.empty()) return Refuse(target, "empty");
  if (absl::StartsWith(rest, "unix:") || absl::StartsWith(rest, "unix-abstract:")) {
    return absl::OkStatus();
  }
  // One scheme at most; a dns authority ("dns://8.8.8.8/host") is refused: it is never needed here.
  if (absl::ConsumePrefix(&rest, "dns:")) {
    if (!absl::ConsumePrefix(&rest, "///")) return Refuse(target, "dns targets must be dns:///host:port");
  } else {
    absl::ConsumePrefix(&rest, "ipv4:") || absl::ConsumePrefix(&rest, "ipv6:");
  }
  if (rest.find(',') != absl::string_view::npos) return Refuse(target, "lists of addresses are not accepted");
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) return Refuse(target, "unterminated '['");
    host = rest.substr(1, close - 1);
    absl::string_view after = rest.substr(close + 1);
    if (!absl::ConsumePrefix(&after, ":")) return Refuse(target, "a port is required");
    port = after;
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return Refuse(target, "a port is required");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) return Refuse(target, "write IPv6 addresses as [addr]:port");
  }
  int port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number < 1 || port_number > 65535) {
    return Refuse(target, absl::StrCat("port '", port, "' is not in 1..65535"));
  }
  if (!IsLoopbackHost(host)) return Refuse(target, absl::StrCat("'", host, "' is not a loopback address"));
  return absl::OkStatus();
}

}  // namespace recd::loadtest
