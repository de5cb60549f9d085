// Everything weft offers, in one include.
#pragma once

#include <weft/blocking.hpp>
#include <weft/fiber.hpp>
#include <weft/fiber_local.hpp>
#include <weft/park.hpp>
#include <weft/runtime.hpp>
