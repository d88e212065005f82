select public.pmt_demo_seed(1000);
