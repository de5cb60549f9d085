// Everything weft offers, in one include: the runtime (fibers, runtime, park API, fiber_local,
// run_blocking), the synchronization primitives and I/O (weft::net sockets, weft::posix). It
// lives in the highest module (io/).
#pragma once

#include <weft/detail/cxx20.hpp>

#include <weft/barrier.hpp>
#include <weft/blocking.hpp>
#include <weft/channel.hpp>
#include <weft/condition_variable.hpp>
#include <weft/fiber.hpp>
#include <weft/fiber_local.hpp>
#include <weft/future.hpp>
#include <weft/latch.hpp>
#include <weft/mutex.hpp>
#include <weft/net.hpp>
#include <weft/park.hpp>
#include <weft/posix.hpp>
#include <weft/runtime.hpp>
#include <weft/select.hpp>
#include <weft/semaphore.hpp>
#include <weft/shared_mutex.hpp>
#include <weft/task_group.hpp>
#include <weft/wait_group.hpp>
