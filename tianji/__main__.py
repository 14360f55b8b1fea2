from tianji.cli import main

raise SystemExit(main())
