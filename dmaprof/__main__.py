from dmaprof.cli import main

main()
