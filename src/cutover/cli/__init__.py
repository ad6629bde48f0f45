"""cli: the headless commands face (`cutover check|status|advance|…`) and the entry point that
opens the console, the demo or the watcher when asked. May import everything, lazily."""
