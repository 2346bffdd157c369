"""Simulators: real peers speaking the real protocols (DC-09 panels, serial receivers, Modbus panels), and the benchmarks."""
