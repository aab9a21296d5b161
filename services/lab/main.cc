#include <iostream>

#include "services/lab/lab.h"

int main(int argc, char** argv) {
  return fedrx::lab::Run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
