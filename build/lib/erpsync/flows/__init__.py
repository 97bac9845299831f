"""System-agnostic flows: fetch, filter, map, resolve, write, bind. Never a concrete system."""
