// weft::net in one include: endpoints and resolution, TCP, UDP and Unix-domain sockets.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <weft/net/endpoint.hpp>
#include <weft/net/error.hpp>
#include <weft/net/socket.hpp>
#include <weft/net/stream.hpp>
#include <weft/net/tcp.hpp>
#include <weft/net/udp.hpp>
#include <weft/net/unix.hpp>
