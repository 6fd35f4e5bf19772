#pragma once
// Hessian builder: streaming accumulation (H = 2/n X X^T) and preparation for the block solver.
#include <vqlib/hessian/accumulator.hpp>
#include <vqlib/hessian/prepare.hpp>
#include <vqlib/hessian/proxy_loss.hpp>
