#include "services/ingest_service/ingest_main.h"

int main(int argc, char** argv) { return fedrx::ingest_service::Main(argc, argv); }
